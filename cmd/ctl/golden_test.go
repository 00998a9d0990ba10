package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gwstated/cluster/clustertest"
)

// update rewrites the golden files under testdata from the current output:
// go test ./cmd/ctl -run TestName -update, then read the diff.
var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func TestMain(m *testing.M) {
	if os.Getenv(runAsGwctl) == "1" {
		main() // the completion tests run this binary as gwctl (completion_test.go)
	}
	goleak.VerifyTestMain(m, clustertest.IgnoreEtcd()...)
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept, then review the diff):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff shows the lines that differ between want and got.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
		}
	}
	return b.String()
}

// fixedClock returns a clock stuck at t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// ctlResult is one gwctl run.
type ctlResult struct {
	out, err string
	code     int
}

// runCtl runs one gwctl command line with the given clock.
func runCtl(ctx context.Context, clock func() time.Time, args ...string) ctlResult {
	var out, errb bytes.Buffer
	code := run(ctx, args, &stdio{out: &out, err: &errb, clock: clock})
	return ctlResult{out: out.String(), err: errb.String(), code: code}
}

// notifyBuffer is an io.Writer that can be read while it is written and
// signals every write, so a test can wait for output without sleeping.
type notifyBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{}
}

func newNotifyBuffer() *notifyBuffer { return &notifyBuffer{written: make(chan struct{}, 1)} }

func (n *notifyBuffer) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case n.written <- struct{}{}:
	default:
	}
	return n.b.Write(p)
}

func (n *notifyBuffer) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.String()
}

// waitFor waits until the buffer holds s, or fails the test after timeout.
func (n *notifyBuffer) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !strings.Contains(n.String(), s) {
		select {
		case <-n.written:
		case <-deadline.C:
			t.Fatalf("no %q in the output after %s; output:\n%s", s, timeout, n.String())
		}
	}
}
