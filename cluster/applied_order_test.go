package cluster

import (
	"errors"
	"testing"
	"time"

	"gwstated/cluster/clustertest"
)

// TestAppliedRecordsStayInOrder: applied/<node> has two writers, the agent's
// ReportApplied and the node-record loop (which writes a record reported
// while etcd was unreachable). The loop's write of an older record must
// never land after a newer one. The test holds the loop just before it
// writes seq 36 and reports seq 37 meanwhile: before appliedMu, 37 was
// written at once and the loop's 36 overwrote it (etcd kept 36, one behind
// the verdict, until the next decision).
func TestAppliedRecordsStayInOrder(t *testing.T) {
	e := clustertest.StartEtcd(t, 1)
	c := newCluster(t, e)
	n := c.start("fw1", nil)
	c.waitMembers([]*tnode{n}, 1)
	waitFor(t, 15*time.Second, "etcd mode", func() bool { return n.Status().Mode == ModeEtcd && n.store != nil })

	ctx := ctxT(t, 30*time.Second)
	done37 := make(chan error, 1)
	held := make(chan struct{})
	n.testLoopPut = func(a AppliedRecord) {
		if a.Seq != 36 {
			return
		}
		n.mu.Lock()
		n.mode = ModeEtcd // etcd is back: ReportApplied writes directly
		n.mu.Unlock()
		go func() { done37 <- n.ReportApplied(ctx, AppliedRecord{Seq: 37, Hash: "h37"}) }()
		close(held)
		// Give ReportApplied(37) the chance to overtake this write; with
		// appliedMu it cannot finish before this write is done.
		select {
		case err := <-done37:
			done37 <- err
		case <-time.After(300 * time.Millisecond):
		}
	}

	// seq 36 is reported while etcd is "unreachable": kept for the loop.
	n.mu.Lock()
	n.mode = ModeHold
	n.mu.Unlock()
	if err := n.ReportApplied(ctx, AppliedRecord{Seq: 36, Hash: "h36"}); !errors.Is(err, ErrEtcdUnreachable) {
		t.Fatalf("ReportApplied(36) while unreachable: %v, want ErrEtcdUnreachable", err)
	}
	n.signalNode()
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the node-record loop never wrote the kept record")
	}
	select {
	case err := <-done37:
		if err != nil {
			t.Fatalf("ReportApplied(37): %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ReportApplied(37) did not return")
	}
	// The loop writes under appliedMu: once it is free, its write is done.
	n.appliedMu.Lock()
	n.appliedMu.Unlock() //nolint:staticcheck // an empty critical section: wait for the loop's write
	got, err := n.store.Applied(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a := got["fw1"]; a.Seq != 37 {
		t.Errorf("applied/fw1 = seq %d (%s), want 37: an older record landed after the newer one", a.Seq, a.Hash)
	}
}
