package pfapply

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"gwstated/pfapply/pfemu"
)

// fakeRunner records every command and answers from a script: the first
// matching response whose Times is not used up answers; calls that match
// nothing go to the OpenBSD emulator emu (pfapply/pfemu) when set, else
// succeed with no output. It also keeps the content of the file a
// "pfctl ... -f <file>" call names, as it was at the time of the call.
type fakeRunner struct {
	emu       *pfemu.Emu
	mu        sync.Mutex
	calls     [][]string // name followed by args
	files     []string   // for each call, the -f file's content ("" when none)
	responses []*fakeResponse
	failCall  int // 1-based index of a call that fails with exit 1; 0: none
}

// fakeResponse answers calls that match.
type fakeResponse struct {
	match  func(call []string) bool
	stdout string
	err    error // returned as is (use cmdErr for a *CmdError)
	times  int   // answer this many calls, then stop matching; 0: forever
	used   int
}

func (f *fakeRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
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
		return nil, &CmdError{Cmd: name, Args: args, Exit: 1, Stderr: "scripted failure of call " + fmt.Sprint(len(f.calls))}
	}
	for _, r := range f.responses {
		if (r.times == 0 || r.used < r.times) && r.match(call) {
			r.used++
			return []byte(r.stdout), r.err
		}
	}
	if f.emu != nil {
		return f.emu.Run(ctx, name, args...)
	}
	return nil, nil
}

// on adds a response and returns it for chaining.
func (f *fakeRunner) on(match func([]string) bool, stdout string, err error) *fakeResponse {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &fakeResponse{match: match, stdout: stdout, err: err}
	f.responses = append(f.responses, r)
	return r
}

// take returns the calls recorded since the last take and forgets them.
func (f *fakeRunner) take() (calls [][]string, files []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls, files = f.calls, f.files
	f.calls, f.files = nil, nil
	return calls, files
}

// argsEqual matches a call with exactly these words.
func argsEqual(words ...string) func([]string) bool {
	return func(c []string) bool { return slices.Equal(c, words) }
}

// hasArgs matches a call whose words include all of these, in order, contiguous.
func hasArgs(words ...string) func([]string) bool {
	return func(c []string) bool {
		for i := 0; i+len(words) <= len(c); i++ {
			if slices.Equal(c[i:i+len(words)], words) {
				return true
			}
		}
		return false
	}
}

func cmdErr(exit int, stdout, stderr string) *CmdError {
	return &CmdError{Cmd: "x", Exit: exit, Stdout: stdout, Stderr: stderr}
}

// assertCalls compares recorded command lines with the expected ones and
// prints a line diff on mismatch.
func assertCalls(t *testing.T, what string, got, want [][]string) {
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
