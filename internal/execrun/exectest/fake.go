// Package exectest is a recording execrun.Runner for tests: it keeps every
// command line in order, answers from a script, and compares the recorded
// calls with the expected ones with a line diff.
package exectest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"gwstated/internal/execrun"
)

// Runner records every command and answers from a script: the first
// matching response whose Times is not used up answers; calls that match
// nothing succeed with no output. It also keeps the content of the file a
// "... -f <file>" call names, as it was at the time of the call.
type Runner struct {
	mu        sync.Mutex
	calls     [][]string // name followed by args
	files     []string   // for each call, the -f file's content ("" when none)
	responses []*Response
	failCall  int // 1-based index of a call that fails with exit 1; 0: none
}

var _ execrun.Runner = (*Runner)(nil)

// Response answers calls that match.
type Response struct {
	match  func(call []string) bool
	stdout string
	err    error
	// Times is how many calls this response answers before it stops
	// matching; 0: forever. Set it before the calls are made.
	Times int
	used  int
}

// Run implements execrun.Runner.
func (f *Runner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := append([]string{name}, args...)
	f.calls = append(f.calls, call)
	content := ""
	if i := slices.Index(args, "-f"); i >= 0 && i+1 < len(args) {
		b, err := os.ReadFile(args[i+1])
		if err != nil {
			content = "<unreadable: " + err.Error() + ">"
		} else {
			content = string(b)
		}
	}
	f.files = append(f.files, content)
	if f.failCall == len(f.calls) {
		return nil, &execrun.CmdError{Cmd: name, Args: args, Exit: 1, Stderr: "scripted failure of call " + fmt.Sprint(len(f.calls))}
	}
	for _, r := range f.responses {
		if (r.Times == 0 || r.used < r.Times) && r.match(call) {
			r.used++
			return []byte(r.stdout), r.err
		}
	}
	return nil, nil
}

// On adds a response: calls that match get stdout and err (err as is; use
// CmdErr for a *execrun.CmdError). It returns the response so a test can
// set its Times.
func (f *Runner) On(match func([]string) bool, stdout string, err error) *Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &Response{match: match, stdout: stdout, err: err}
	f.responses = append(f.responses, r)
	return r
}

// FailCall makes the n-th call from now on (counted from the first call
// since the last Take, 1-based) fail with exit 1; 0 turns it off.
func (f *Runner) FailCall(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failCall = n
}

// Take returns the calls recorded since the last Take and forgets them, with
// the content of each call's -f file ("" when none).
func (f *Runner) Take() (calls [][]string, files []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls, files = f.calls, f.files
	f.calls, f.files = nil, nil
	return calls, files
}

// ArgsEqual matches a call with exactly these words (the program first).
func ArgsEqual(words ...string) func([]string) bool {
	return func(c []string) bool { return slices.Equal(c, words) }
}

// HasArgs matches a call whose words include all of these, in order, contiguous.
func HasArgs(words ...string) func([]string) bool {
	return func(c []string) bool {
		for i := 0; i+len(words) <= len(c); i++ {
			if slices.Equal(c[i:i+len(words)], words) {
				return true
			}
		}
		return false
	}
}

// CmdErr is a failed command with this exit status and output.
func CmdErr(exit int, stdout, stderr string) *execrun.CmdError {
	return &execrun.CmdError{Cmd: "x", Exit: exit, Stdout: stdout, Stderr: stderr}
}

// AssertCalls compares recorded command lines with the expected ones and
// prints a line diff on mismatch.
func AssertCalls(t testing.TB, what string, got, want [][]string) {
	t.Helper()
	j := func(cs [][]string) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = strings.Join(c, " ")
		}
		return out
	}
	g, w := j(got), j(want)
	if slices.Equal(g, w) {
		return
	}
	var b strings.Builder
	n := max(len(g), len(w))
	for i := range n {
		gl, wl := "", ""
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		mark := "  "
		if gl != wl {
			mark = "!="
		}
		fmt.Fprintf(&b, "%2d %s want: %s\n            got:  %s\n", i+1, mark, wl, gl)
	}
	t.Errorf("%s: command sequence differs (%d calls, want %d):\n%s", what, len(g), len(w), b.String())
}
