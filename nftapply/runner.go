package nftapply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"gwstated/internal/execrun"
)

// Runner runs one command with an argument list — never through a shell —
// with stdin as its standard input (nil: none), and returns its standard
// output. A command that cannot start or exits non-zero is a *CmdError.
// It is execrun.Runner with standard input: nft reads the table from it.
type Runner interface {
	Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
}

// CmdError is a command that failed (execrun's).
type CmdError = execrun.CmdError

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
	ce := &CmdError{Cmd: name, Args: append([]string(nil), args...), Exit: -1,
		Stderr: strings.TrimSpace(stderr.String()), Stdout: strings.TrimSpace(stdout.String()), Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ce.Exit = ee.ExitCode()
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		ce.Err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	return stdout.Bytes(), ce
}
