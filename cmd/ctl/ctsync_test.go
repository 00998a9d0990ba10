package main

import (
	"strings"
	"testing"
)

func TestCtsync(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		err  []string
	}{
		{[]string{"ctsync", "--conntrackd", "/bin/true", "--conntrackd-config", "/etc/c.conf", "master"}, exitOK, nil},
		{[]string{"ctsync", "--conntrackd", "/bin/false", "master"}, exitFail,
			[]string{"commit the peer's connections", "flush", "reload", "send this node's connections", "/bin/false -C /etc/conntrackd/conntrackd.conf -c"}},
		{[]string{"ctsync", "--conntrackd", "/bin/false", "fault"}, exitFail, []string{"shorten the kernel timers"}},
		{[]string{"ctsync"}, exitUsage, []string{"want one state"}},
		{[]string{"ctsync", "master", "backup"}, exitUsage, []string{"want one state"}},
		{[]string{"ctsync", "MASTER"}, exitUsage, []string{`state "MASTER"`}},
		{[]string{"ctsync", "master; reboot"}, exitUsage, []string{"want master, backup or fault"}},
		{[]string{"ctsync", "--conntrackd-config", "relative.conf", "master"}, exitUsage, []string{"absolute path"}},
		{[]string{"ctsync", "--conntrackd-config", "/a\nb", "backup"}, exitUsage, []string{"absolute path"}},
		{[]string{"ctsync", "--conntrackd", "conntrackd", "backup"}, exitUsage, []string{"absolute path"}},
	} {
		r := runCtl(t.Context(), nil, c.args...)
		if r.code != c.code {
			t.Errorf("%q: exit status %d (stderr %q), want %d", c.args, r.code, r.err, c.code)
		}
		for _, w := range c.err {
			if !strings.Contains(r.err, w) {
				t.Errorf("%q: stderr %q does not say %q", c.args, r.err, w)
			}
		}
	}
}
