package execrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs one external command (pfctl, route, ifconfig) with an
// argument list — never through a shell — and returns its standard output.
// A command that cannot start, or that exits non-zero, is reported as a
// *CmdError.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (stdout []byte, err error)
}

// CmdError is a command that failed: it could not start (Exit -1, Err set),
// or it exited with a non-zero status. It carries everything a person needs
// to act: the command line, the exit status and what the command said.
type CmdError struct {
	Cmd    string   // the program, as given to Run
	Args   []string // its arguments
	Exit   int      // exit status; -1 when the command did not start or was killed
	Stderr string   // standard error, trimmed
	Stdout string   // standard output, trimmed (route(8) reports errors there)
	Err    error    // the underlying error from os/exec
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
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if msg := e.output(); msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	return b.String()
}

// output is what the command said about its failure, on one line.
func (e *CmdError) output() string {
	msg := e.Stderr
	if msg == "" {
		msg = e.Stdout
	}
	return strings.Join(strings.Fields(msg), " ")
}

// Unwrap returns the os/exec error.
func (e *CmdError) Unwrap() error { return e.Err }

// ExecRunner runs commands with os/exec. Commands run with a fixed
// environment (PATH of the base system, LC_ALL=C) so their output parses the
// same everywhere.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=/sbin:/usr/sbin:/bin:/usr/bin", "LC_ALL=C"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	ce := &CmdError{
		Cmd:    name,
		Args:   append([]string(nil), args...),
		Exit:   -1,
		Stderr: strings.TrimSpace(stderr.String()),
		Stdout: strings.TrimSpace(stdout.String()),
		Err:    err,
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ce.Exit = ee.ExitCode() // -1 when killed by a signal
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		ce.Err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	return stdout.Bytes(), ce
}
