package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gwstated/cluster/clustertest"
	"gwstated/internal/testkit/golden"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, clustertest.IgnoreEtcd()...) }

// checkGolden compares got with testdata/name, or rewrites it with -update
// (go test ./cmd/ctl -run TestName -update, then read the diff).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), []byte(got))
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
