package nftapply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs one command with an argument list — never through a shell —
// with stdin as its standard input (nil: none), and returns its standard
// output. A command that cannot start or exits non-zero is a *CmdError.
type Runner interface {
	Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
}

// CmdError is a command that failed, with what a person needs to act.
type CmdError struct {
	Cmd    string
	Args   []string
	Exit   int // -1: did not start or was killed
	Stderr string
	Err    error
}

func (e *CmdError) Error() string {
	var b strings.Builder
	b.WriteString(e.Cmd)
	for _, a := range e.Args {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	if e.Exit >= 0 {
		fmt.Fprintf(&b, ": exit status %d", e.Exit)
	} else if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.Stderr != "" {
		b.WriteString(": " + strings.Join(strings.Fields(e.Stderr), " "))
	}
	return b.String()
}

// Unwrap returns the os/exec error.
func (e *CmdError) Unwrap() error { return e.Err }

// ExecRunner runs commands with os/exec, with a fixed environment
// (PATH of the base system, LC_ALL=C). With Netns set, every command runs
// inside that named network namespace (`ip netns exec NETNS ...`): tests
// and the lab drive a namespace from outside.
type ExecRunner struct {
	Netns string
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	bin, argv := name, args
	if r.Netns != "" {
		bin, argv = "ip", append([]string{"netns", "exec", r.Netns, name}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	ce := &CmdError{Cmd: name, Args: append([]string(nil), args...), Exit: -1, Stderr: strings.TrimSpace(stderr.String()), Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ce.Exit = ee.ExitCode()
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		ce.Err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	return stdout.Bytes(), ce
}
