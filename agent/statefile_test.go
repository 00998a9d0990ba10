package agent

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gwstated/cluster"
	"gwstated/internal/atomicfile"
	"gwstated/linkstate"
)

// stateRun is one agent whose state file writes the test controls.
type stateRun struct {
	node    *fakeNode
	recs    chan cluster.AppliedRecord
	reg     *prometheus.Registry
	anchors string
	state   string
}

// startStateRun runs an agent (dir backend, anchors outside the state
// directory) whose state directory is dir/state and whose state file goes
// through write (nil: the real one).
func startStateRun(t *testing.T, dir string, write WriteFileFunc) *stateRun {
	t.Helper()
	r := &stateRun{node: &fakeNode{verdicts: make(chan cluster.VerdictRecord)}, recs: make(chan cluster.AppliedRecord, 100),
		reg: prometheus.NewRegistry(), anchors: filepath.Join(dir, "anchors"), state: filepath.Join(dir, "state")}
	runAgent(t, dir, fmt.Sprintf(soloConfig, freePort(t), freePort(t), r.anchors, "443"), r.node, Options{
		Log:       slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Registry:  r.reg,
		WriteFile: write,
		Applied:   func(rec cluster.AppliedRecord) { r.recs <- rec },
	})
	return r
}

// send delivers a verdict with isp1 in state s1.
func (r *stateRun) send(seq uint64, s1 linkstate.State) {
	active := []string{"isp2"}
	if s1 == linkstate.Up {
		active = []string{"isp1", "isp2"}
	}
	r.node.verdicts <- cluster.VerdictRecord{Verdict: linkstate.Verdict{Seq: seq,
		Links:  map[string]linkstate.LinkVerdict{"isp1": {State: s1}, "isp2": {State: linkstate.Up}},
		Active: active}}
}

// await returns the first applied record for seq that ok accepts; the
// agent reports one per apply and one when the state error changes.
func (r *stateRun) await(t *testing.T, what string, seq uint64, ok func(cluster.AppliedRecord) bool) cluster.AppliedRecord {
	t.Helper()
	timeout := time.After(15 * time.Second)
	var last cluster.AppliedRecord
	for {
		select {
		case rec := <-r.recs:
			if rec.Seq == seq && ok(rec) {
				return rec
			}
			last = rec
		case <-timeout:
			t.Fatalf("%s: no such applied record for seq %d in 15 s; last %+v", what, seq, last)
		}
	}
}

// failing reports whether gwstated_state_save_failing is 1.
func (r *stateRun) failing(t *testing.T) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "gwstated_state_save_failing" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("gwstated_state_save_failing not exported")
	return 0
}

// savedSeq is the verdict seq in the state file (0: none).
func (r *stateRun) savedSeq(t *testing.T) uint64 {
	t.Helper()
	s, ok, err := readState(r.state)
	if err != nil || !ok {
		return 0
	}
	return s.Verdict.Seq
}

// The state file write fails: the verdict is applied all the same, the
// error is in the applied record and the metric; once writes work again
// the retry saves the file and the error clears.
func TestStateFileErrorReportedAndCleared(t *testing.T) {
	var mu sync.Mutex
	full := true
	write := func(name string, data []byte, perm fs.FileMode) error {
		mu.Lock()
		defer mu.Unlock()
		if full {
			return &fs.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
		}
		return atomicfile.WriteFile(name, data, perm)
	}
	r := startStateRun(t, t.TempDir(), write)
	r.send(3, linkstate.Down)
	rec := r.await(t, "apply with the state file failing", 3, func(rec cluster.AppliedRecord) bool { return rec.StateError != "" })
	if rec.Error != "" {
		t.Errorf("apply error %q: a full state directory must not fail the apply", rec.Error)
	}
	if !strings.Contains(rec.StateError, "no space left on device") || !strings.Contains(rec.StateError, "state.json") {
		t.Errorf("state_error %q: want the file and the reason", rec.StateError)
	}
	if lb := readFile(t, filepath.Join(r.anchors, "loadbalance.conf")); strings.Contains(lb, "198.51.100.100") {
		t.Errorf("isp1 still in loadbalance after the verdict took it down:\n%s", lb)
	}
	if got := r.failing(t); got != 1 {
		t.Errorf("gwstated_state_save_failing = %v, want 1", got)
	}
	mu.Lock()
	full = false
	mu.Unlock()
	r.await(t, "state error cleared by the retry", 3, func(rec cluster.AppliedRecord) bool { return rec.StateError == "" && rec.Error == "" })
	if got := r.failing(t); got != 0 {
		t.Errorf("gwstated_state_save_failing = %v after the write succeeded, want 0", got)
	}
	if got := r.savedSeq(t); got != 3 {
		t.Errorf("state file holds seq %d, want 3", got)
	}
}

// readOnlyWrite fails like a read-only file system.
func readOnlyWrite(name string, _ []byte, _ fs.FileMode) error {
	return &fs.PathError{Op: "open", Path: name, Err: syscall.EROFS}
}

// Later applies keep working and keep reporting the error while the state
// directory stays read-only.
func TestStateFileReadOnlyKeepsApplying(t *testing.T) {
	r := startStateRun(t, t.TempDir(), readOnlyWrite)
	r.send(5, linkstate.Down)
	r.await(t, "first apply", 5, func(rec cluster.AppliedRecord) bool {
		return rec.Error == "" && strings.Contains(rec.StateError, "read-only file system")
	})
	r.send(6, linkstate.Up)
	r.await(t, "second apply", 6, func(rec cluster.AppliedRecord) bool {
		return rec.Error == "" && strings.Contains(rec.StateError, "read-only file system")
	})
	if lb := readFile(t, filepath.Join(r.anchors, "loadbalance.conf")); !strings.Contains(lb, "198.51.100.100") {
		t.Errorf("isp1 not back in loadbalance:\n%s", lb)
	}
	if _, err := os.Stat(filepath.Join(r.state, stateName)); err == nil {
		t.Error("a state file was written through a read-only writer")
	}
}

// The temporary file atomicfile writes first has a random name: a retry
// failing for the same reason is the same error (logged and reported once).
func TestStateErrorStableAcrossRetries(t *testing.T) {
	n := 0
	write := func(name string, _ []byte, _ fs.FileMode) error {
		n++
		return &fs.PathError{Op: "write", Path: fmt.Sprintf("%s/.state.json.tmp-%d", filepath.Dir(name), n), Err: syscall.ENOSPC}
	}
	dir := t.TempDir()
	a := &agent{o: Options{StateDir: dir, WriteFile: write}, log: slog.New(slog.DiscardHandler),
		m: newMetrics(prometheus.NewRegistry(), metricsConfig(false))}
	if !a.saveState(stateFile{}) {
		t.Fatal("the first failure is not reported as a change")
	}
	want := "state file: write " + filepath.Join(dir, stateName) + ": no space left on device"
	if a.stateErr != want {
		t.Errorf("state error %q, want %q", a.stateErr, want)
	}
	for i := range 3 {
		if a.saveState(stateFile{}) {
			t.Errorf("retry %d reported a new error: %q", i+1, a.stateErr)
		}
	}
	if a.stateDue == nil {
		t.Error("nothing left to retry after a failed write")
	}
}
