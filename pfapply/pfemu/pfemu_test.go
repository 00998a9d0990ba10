package pfemu

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gwstated/pfapply/pfrule"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a.pending")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const lb = "pass in on dc0 from 192.168.0.0/24 route-to { 198.51.100.100 203.0.113.200 } round-robin label \"gwstated:loadbalance\"\n"

func TestPfctlLoadShowTable(t *testing.T) {
	e := New(Options{Seed: 3})
	f := write(t, lb)
	if r := e.Exec("/sbin/pfctl", []string{"-n", "-a", "loadbalance", "-f", f}); r.Exit != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Fatalf("-n: %+v", r)
	}
	if a := e.Anchor("loadbalance"); a != nil {
		t.Fatalf("-n loaded: %+v", a)
	}
	if r := e.Exec("/sbin/pfctl", []string{"-a", "loadbalance", "-f", f}); r.Exit != 0 {
		t.Fatalf("load: %+v", r)
	}
	tbl := e.Anchor("loadbalance").Tables[0].Name
	if !strings.HasPrefix(tbl, "__automatic_") || !strings.HasSuffix(tbl, "_0") {
		t.Errorf("table name %q", tbl)
	}
	r := e.Exec("pfctl", []string{"-a", "loadbalance", "-sr"})
	want := "pass in on dc0 inet from 192.168.0.0/24 to any flags S/SA label \"gwstated:loadbalance\" route-to <" + tbl + "> round-robin\n"
	if r.Exit != 0 || r.Stdout != want {
		t.Errorf("-sr: %+v, want %q", r, want)
	}
	r = e.Exec("/sbin/pfctl", []string{"-a", "loadbalance", "-t", tbl, "-T", "show"})
	if r.Exit != 0 || r.Stdout != "   198.51.100.100\n   203.0.113.200\n" {
		t.Errorf("-T show: %+v", r)
	}
	r = e.Exec("/sbin/pfctl", []string{"-a", "loadbalance", "-t", "nosuch", "-T", "show"})
	if r.Exit != 1 || r.Stderr != "pfctl: Table does not exist.\n" {
		t.Errorf("-T show of a missing table: %+v", r)
	}
	// Every load is a new pfctl run: a new table identifier, counter from 0.
	e.Exec("/sbin/pfctl", []string{"-a", "loadbalance", "-f", f})
	if t2 := e.Anchor("loadbalance").Tables; len(t2) != 1 || t2[0].Name == tbl || !strings.HasSuffix(t2[0].Name, "_0") {
		t.Errorf("reload tables %+v (first %s)", t2, tbl)
	}
	// An empty file empties the anchor and drops its tables.
	e.Exec("/sbin/pfctl", []string{"-a", "loadbalance", "-f", write(t, "")})
	if r := e.Exec("/sbin/pfctl", []string{"-a", "loadbalance", "-sr"}); r.Stdout != "" || len(e.Anchor("loadbalance").Tables) != 0 {
		t.Errorf("emptied: %+v %+v", r, e.Anchor("loadbalance"))
	}
	// An anchor never loaded is empty (pf.conf calls it).
	if r := e.Exec("/sbin/pfctl", []string{"-a", "nat-isp9", "-sr"}); r.Exit != 0 || r.Stdout != "" {
		t.Errorf("never loaded: %+v", r)
	}
}

func TestPfctlRefuses(t *testing.T) {
	for _, d := range []pfrule.Dialect{pfrule.OpenBSD, pfrule.Legacy} {
		e := New(Options{Dialect: d, Interfaces: []string{"dc0", "fxp0", "fxp1"}})
		rule := "pass in on dc0 from 192.168.0.0/24 route-to (fxp0 198.51.100.100) label \"x\"\n"
		if d == pfrule.Legacy {
			rule = "pass in on dc0 from 192.168.0.0/24 route-to 198.51.100.100 label \"x\"\n"
		}
		f := write(t, "# comment\n"+rule)
		for _, args := range [][]string{{"-n", "-a", "loadbalance", "-f", f}, {"-a", "loadbalance", "-f", f}} {
			r := e.Exec("/sbin/pfctl", args)
			if r.Exit != 1 || !strings.HasPrefix(r.Stderr, f+":2: ") || !strings.HasSuffix(r.Stderr, "pfctl: Syntax error in config file: pf rules not loaded\n") {
				t.Errorf("dialect %d %q: %+v", d, args, r)
			}
		}
		if e.Anchor("loadbalance") != nil {
			t.Errorf("dialect %d: a refused file was loaded", d)
		}
	}
}

func TestKillStates(t *testing.T) {
	e := New(Options{})
	e.AddStates(State{Label: "gwstated:isp1"}, State{Label: "gwstated:isp1"}, State{Label: "gwstated:isp2"})
	r := e.Exec("/sbin/pfctl", []string{"-k", "label", "-k", "gwstated:isp1"})
	if r.Exit != 0 || r.Stderr != "killed 2 states\n" {
		t.Errorf("kill: %+v", r)
	}
	if m := e.StatesByLabel(); m["gwstated:isp1"] != 0 || m["gwstated:isp2"] != 1 {
		t.Errorf("states %v", m)
	}
	if r := e.Exec("/sbin/pfctl", []string{"-k", "label", "-k", "gwstated:isp1"}); r.Stderr != "killed 0 states\n" {
		t.Errorf("second kill: %+v", r)
	}
	if r := e.Exec("/sbin/pfctl", []string{"-k", "gateway", "-k", "198.51.100.100"}); r.Exit == 0 {
		t.Errorf("-k gateway (FreeBSD only) accepted: %+v", r)
	}
}

func TestRoute(t *testing.T) {
	e := New(Options{})
	r := e.Exec("/sbin/route", []string{"-n", "change", "default", "198.51.100.100"})
	if r.Exit != 1 || r.Stdout != "change net default: gateway 198.51.100.100: not in table\n" || r.Stderr != "" {
		t.Errorf("change without a route: %+v", r)
	}
	r = e.Exec("/sbin/route", []string{"-n", "add", "default", "198.51.100.100"})
	if r.Exit != 0 || r.Stdout != "add net default: gateway 198.51.100.100\n" {
		t.Errorf("add: %+v", r)
	}
	if r := e.Exec("/sbin/route", []string{"-n", "add", "default", "203.0.113.200"}); r.Exit != 1 || !strings.HasSuffix(r.Stdout, ": File exists\n") {
		t.Errorf("add twice: %+v", r)
	}
	r = e.Exec("/sbin/route", []string{"-n", "change", "default", "203.0.113.200"})
	if r.Exit != 0 || e.DefaultRoute(0, false) != netip.MustParseAddr("203.0.113.200") {
		t.Errorf("change: %+v, %v", r, e.DefaultRoute(0, false))
	}
	r = e.Exec("/sbin/route", []string{"-T", "2", "-n", "change", "-inet6", "default", "2001:db8::1"})
	if r.Exit != 1 || !strings.Contains(r.Stdout, "not in table") {
		t.Errorf("rtable 2 inet6: %+v", r)
	}
}

// TestCarpdemote: ifconfig's carpdemote takes 0-128 (ifconfig.c 1.476) and
// the kernel keeps the group counter within 0-255 (if.c 1.741).
func TestCarpdemote(t *testing.T) {
	e := New(Options{})
	e.SetCARP("carp0", CARP{State: "MASTER", Carpdev: "em0", VHID: 1, Advbase: 1})
	if r := e.Exec("/sbin/ifconfig", []string{"carp0"}); r.Stdout != "\tcarp: MASTER carpdev em0 vhid 1 advbase 1 advskew 0\n" {
		t.Errorf("ifconfig carp0: %+v", r)
	}
	if r := e.Exec("/sbin/ifconfig", []string{"carp9"}); r.Exit != 1 || r.Stderr != "carp9: no such interface\n" {
		t.Errorf("ifconfig carp9: %+v", r)
	}
	if r := e.Exec("/sbin/ifconfig", []string{"-g", "carp"}); r.Stdout != "carp: carp demote count 0\n" {
		t.Errorf("-g carp: %+v", r)
	}
	for _, tc := range []struct {
		args   []string
		exit   int
		stderr string
		count  int
	}{
		{[]string{"-g", "carp", "carpdemote", "129"}, 1, "ifconfig: carp: invalid carp demotion: too large\n", 0},
		{[]string{"-g", "carp", "carpdemote", "-1"}, 1, "ifconfig: carp: invalid carp demotion: too small\n", 0},
		{[]string{"-g", "carp", "carpdemote", "x"}, 1, "ifconfig: carp: invalid carp demotion: invalid\n", 0},
		{[]string{"-g", "carp", "carpdemote", "128"}, 0, "", 128},
		{[]string{"-g", "carp", "carpdemote", "127"}, 0, "", 255},
		{[]string{"-g", "carp", "carpdemote", "1"}, 1, "ifconfig: carp: SIOCSIFGATTR: Invalid argument\n", 255},
		{[]string{"-g", "carp", "-carpdemote", "128"}, 0, "", 127},
		{[]string{"-g", "carp", "-carpdemote", "128"}, 1, "ifconfig: carp: SIOCSIFGATTR: Invalid argument\n", 127},
		{[]string{"-g", "carp", "carpdemote"}, 0, "", 128},
		{[]string{"-g", "wan", "carpdemote", "5"}, 1, "ifconfig: wan: SIOCSIFGATTR: No such file or directory\n", 128},
	} {
		r := e.Exec("/sbin/ifconfig", tc.args)
		n, _ := e.Demotion("carp")
		if r.Exit != tc.exit || r.Stderr != tc.stderr || n != tc.count {
			t.Errorf("%q: %+v, counter %d; want exit %d %q, counter %d", tc.args, r, n, tc.exit, tc.stderr, tc.count)
		}
	}
}

func TestRunErrorsAndFaults(t *testing.T) {
	e := New(Options{NewError: func(_ string, _ []string, r Result) error { return &myErr{r} }})
	_, err := e.Run(context.Background(), "/sbin/route", "-n", "change", "default", "198.51.100.100")
	var me *myErr
	if !errors.As(err, &me) || me.Exit != 1 {
		t.Errorf("Run: %v", err)
	}
	e.Inject(&Fault{Match: func(n string, a []string) bool { return n == "/sbin/pfctl" }, Times: 1, Result: Result{Stderr: "pfctl: DIOCADDRULE: Device busy\n", Exit: 1}})
	if r := e.Exec("/sbin/pfctl", []string{"-a", "x", "-sr"}); r.Exit != 1 {
		t.Errorf("fault not applied: %+v", r)
	}
	if r := e.Exec("/sbin/pfctl", []string{"-a", "x", "-sr"}); r.Exit != 0 {
		t.Errorf("fault applied twice: %+v", r)
	}
	if c := e.TakeCalls(); len(c) != 3 {
		t.Errorf("calls %+v", c)
	}
	if _, err := e.Run(context.Background(), "/bin/sh", "-c", "reboot"); err == nil {
		t.Error("an unknown program ran")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	e := New(Options{Seed: 1})
	e.Exec("/sbin/pfctl", []string{"-a", "loadbalance", "-f", write(t, lb)})
	e.SetDefaultRoute(0, false, netip.MustParseAddr("198.51.100.100"))
	e.SetCARP("carp0", CARP{State: "BACKUP", Carpdev: "em0", VHID: 1, Advbase: 1, Advskew: 100})
	s := e.Snapshot()
	f := New(Options{Seed: 1})
	f.Restore(s)
	a, b := e.Exec("/sbin/pfctl", []string{"-a", "loadbalance", "-sr"}), f.Exec("/sbin/pfctl", []string{"-a", "loadbalance", "-sr"})
	if a != b || f.DefaultRoute(0, false) != e.DefaultRoute(0, false) {
		t.Errorf("restored state differs: %+v / %+v", a, b)
	}
}

type myErr struct{ Result }

func (e *myErr) Error() string { return e.Stderr }
