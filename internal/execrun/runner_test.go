package execrun

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestExecRunner runs real programs: output, a non-zero exit with its
// stderr, a program that does not exist, and a cancelled context.
func TestExecRunner(t *testing.T) {
	ctx := context.Background()
	for _, p := range []string{"echo", "ls"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not found: %v", p, err)
		}
	}
	echo, _ := exec.LookPath("echo")
	ls, _ := exec.LookPath("ls")
	var r ExecRunner

	out, err := r.Run(ctx, echo, "a; rm -rf /", "$HOME")
	if err != nil || string(out) != "a; rm -rf / $HOME\n" {
		t.Errorf("echo: %q, %v (arguments must reach the program untouched)", out, err)
	}

	_, err = r.Run(ctx, ls, "/nonexistent-gwstated-test")
	var ce *CmdError
	if !errors.As(err, &ce) {
		t.Fatalf("ls of a missing path: %v, want *CmdError", err)
	}
	if ce.Exit <= 0 || ce.Stderr == "" || ce.Cmd != ls || len(ce.Args) != 1 {
		t.Errorf("CmdError %+v: want exit > 0, stderr, command and args", ce)
	}
	if msg := err.Error(); !strings.Contains(msg, "/nonexistent-gwstated-test") || !strings.Contains(msg, "exit status") {
		t.Errorf("message %q does not say what ran and how it failed", msg)
	}

	_, err = r.Run(ctx, "/nonexistent/pfctl", "-sr")
	if !errors.As(err, &ce) || ce.Exit != -1 || ce.Err == nil {
		t.Errorf("missing program: %v, want CmdError with Exit -1", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = r.Run(cctx, echo, "x")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v, want context.Canceled", err)
	}
}
