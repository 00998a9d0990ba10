package redundancy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"gwstated/internal/execrun/exectest"
)

func TestHandoffSteps(t *testing.T) {
	const conf = "/etc/conntrackd/conntrackd.conf"
	want := map[string][]string{
		HandoffMaster: {"-c", "-f", "-R", "-B"},
		HandoffBackup: {"-t", "-n"},
		HandoffFault:  {"-t"},
	}
	for state, ops := range want {
		r := &exectest.Runner{}
		if err := Handoff(context.Background(), r, "/usr/sbin/conntrackd", state, conf); err != nil {
			t.Fatalf("%s: %v", state, err)
		}
		calls, _ := r.Take()
		var wantCalls [][]string
		for _, op := range ops {
			wantCalls = append(wantCalls, []string{"/usr/sbin/conntrackd", "-C", conf, op})
		}
		exectest.AssertCalls(t, state, calls, wantCalls)
	}
}

// TestHandoffRunsEveryStep: a failed step is reported, naming what it was
// for, and the later steps still run (primary-backup.sh does the same).
func TestHandoffRunsEveryStep(t *testing.T) {
	r := &exectest.Runner{}
	r.FailCall(2) // -f
	err := Handoff(context.Background(), r, "/usr/sbin/conntrackd", HandoffMaster, "/c.conf")
	if err == nil || !strings.Contains(err.Error(), "flush conntrackd's caches") || !strings.Contains(err.Error(), "-f") {
		t.Fatalf("error %v: want the failed flush named", err)
	}
	calls, _ := r.Take()
	if len(calls) != 4 || calls[3][len(calls[3])-1] != "-B" {
		t.Fatalf("calls %v: want all four steps", calls)
	}
}

func TestHandoffCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &exectest.Runner{}
	if err := Handoff(ctx, r, "/usr/sbin/conntrackd", HandoffMaster, "/c.conf"); !errors.Is(err, context.Canceled) {
		t.Fatalf("%v: want context.Canceled", err)
	}
	if calls, _ := r.Take(); len(calls) != 0 {
		t.Fatalf("ran %v after cancel", calls)
	}
}

func TestHandoffBadInput(t *testing.T) {
	for _, c := range []struct{ state, conf, bin string }{
		{"MASTER", "/c.conf", "/usr/sbin/conntrackd"},
		{"master; reboot", "/c.conf", "/usr/sbin/conntrackd"},
		{"", "/c.conf", "/usr/sbin/conntrackd"},
		{"master", "c.conf", "/usr/sbin/conntrackd"},
		{"master", "/c.conf\n-k", "/usr/sbin/conntrackd"},
		{"master", "", "/usr/sbin/conntrackd"},
		{"master", "/c.conf", "conntrackd"},
		{"backup", "/c.conf", "/usr/sbin/conntrackd\r"},
	} {
		r := &exectest.Runner{}
		err := Handoff(context.Background(), r, c.bin, c.state, c.conf)
		if !errors.Is(err, ErrHandoff) {
			t.Errorf("%q %q %q: %v, want ErrHandoff", c.state, c.conf, c.bin, err)
		}
		if calls, _ := r.Take(); len(calls) != 0 {
			t.Errorf("%q %q %q: ran %v", c.state, c.conf, c.bin, calls)
		}
	}
	if _, err := HandoffSteps("fault", "/x"); err != nil {
		t.Fatal(err)
	}
	steps, _ := HandoffSteps("master", "/a b/c.conf") // a blank is one argument, not two
	if !slices.Equal(steps[0], []string{"-C", "/a b/c.conf", "-c"}) {
		t.Fatalf("steps %v", steps)
	}
}
