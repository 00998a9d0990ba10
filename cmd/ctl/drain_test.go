package main

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/cluster"
	"gwstated/linkstate"
)

// fakeCluster plays the agent leader and the agents for the drain tests,
// through etcd only, as the real ones do: on every change under the
// cluster's prefix (and on every tick of its clock) the leader drops
// expired overrides and, when the overrides in force differ from the
// verdict's, commits the next verdict (fenced, cluster.Store.CommitVerdict)
// with the drained links down; then each node in appliers writes
// applied/<node> for the verdict it sees.
type fakeCluster struct {
	f        *fixture
	appliers []string
	mu       sync.Mutex
	now      time.Time
	tick     chan struct{}
	wg       sync.WaitGroup
}

func startFakeCluster(f *fixture, appliers ...string) *fakeCluster {
	fc := &fakeCluster{f: f, appliers: appliers, now: t0, tick: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(f.ctx)
	events := f.cli.Watch(ctx, f.store.Keys.Prefix, clientv3.WithPrefix())
	fc.wg.Add(1)
	go func() {
		defer fc.wg.Done()
		for {
			if err := fc.step(ctx); err != nil && ctx.Err() == nil {
				f.t.Errorf("fake cluster: %v", err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-events:
			case <-fc.tick:
			}
		}
	}()
	f.t.Cleanup(func() { cancel(); fc.wg.Wait() })
	return fc
}

// advance moves the leader's clock to t and makes it look again.
func (fc *fakeCluster) advance(t time.Time) {
	fc.mu.Lock()
	fc.now = t
	fc.mu.Unlock()
	select {
	case fc.tick <- struct{}{}:
	default:
	}
}

func (fc *fakeCluster) step(ctx context.Context) error {
	s := fc.f.store
	fc.mu.Lock()
	now := fc.now
	fc.mu.Unlock()
	ovs, _, err := s.Overrides(ctx)
	if err != nil {
		return err
	}
	inForce := map[string]linkstate.Action{}
	for _, o := range ovs {
		if !o.Until.IsZero() && !now.Before(o.Until) {
			if _, err := s.Cli.Delete(ctx, s.Keys.Override(o.Link)); err != nil {
				return err
			}
			continue
		}
		inForce[o.Link] = o.Action
	}
	v, _, ok, err := s.Verdict(ctx)
	if err != nil || !ok {
		return err
	}
	changed := false
	for name, lv := range v.Links {
		if lv.Override == inForce[name] {
			continue
		}
		changed = true
		lv.Override = inForce[name]
		lv.State = lv.Observed
		if lv.Override == linkstate.Drain {
			lv.State = linkstate.Down
		}
		lv.Since = now
		v.Links[name] = lv
	}
	if changed {
		v.Seq++
		v.Time = now
		v.Active = nil
		for _, name := range slices.Sorted(maps.Keys(v.Links)) {
			if v.Links[name].State == linkstate.Up {
				v.Active = append(v.Active, name)
			}
		}
		if _, err := s.CommitVerdict(ctx, fc.f.fence, v, nil); err != nil {
			return err
		}
	}
	applied, err := s.Applied(ctx)
	if err != nil {
		return err
	}
	for _, n := range fc.appliers {
		if applied[n].Seq < v.Seq {
			if err := s.PutApplied(ctx, cluster.AppliedRecord{Node: n, Seq: v.Seq, Hash: hashA, Time: now, Backend: "dir"}); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitVerdict waits until the verdict satisfies cond.
func waitVerdict(t *testing.T, f *fixture, what string, cond func(cluster.VerdictRecord) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	events := f.cli.Watch(ctx, f.store.Keys.Verdict())
	for {
		v, _, ok, err := f.store.Verdict(ctx)
		if err == nil && ok && cond(v) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no verdict where %s (last: %+v, err %v)", what, v, err)
		case <-events:
		}
	}
}

func readOverride(t *testing.T, f *fixture, link string) (linkstate.Override, bool) {
	t.Helper()
	r, err := f.cli.Get(f.ctx, f.store.Keys.Override(link))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) == 0 {
		return linkstate.Override{}, false
	}
	var o linkstate.Override
	if err := json.Unmarshal(r.Kvs[0].Value, &o); err != nil {
		t.Fatal(err)
	}
	return o, true
}

func TestDrainRoundTrip(t *testing.T) {
	f := newFixture(t, "office")
	seedHealthy(f)
	fc := startFakeCluster(f, "fw1", "fw2")
	t.Setenv("SUDO_USER", "alice")
	host, _ := os.Hostname()
	by := "alice@" + host
	clock := fixedClock(t0)

	// drain with expiry: written, applied by both nodes.
	r := runCtl(f.ctx, clock, f.args("drain", "isp1", "--reason", "ISP maintenance", "--for", "2h", "--wait", "20s")...)
	if r.code != exitOK {
		t.Fatalf("drain: exit status %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
	if !strings.Contains(r.out, "isp1 drained until 2026-11-24 07:00:00") || !strings.Contains(r.out, "applied on fw1, fw2") {
		t.Errorf("drain output:\n%s", r.out)
	}
	o, ok := readOverride(t, f, "isp1")
	want := linkstate.Override{Link: "isp1", Action: linkstate.Drain, Reason: "ISP maintenance", By: by, Since: t0, Until: t0.Add(2 * time.Hour)}
	if !ok || !o.Since.Equal(want.Since) || !o.Until.Equal(want.Until) || o.By != want.By || o.Reason != want.Reason || o.Action != want.Action {
		t.Errorf("override %+v (present %v), want %+v", o, ok, want)
	}

	// status shows the drain, which is no warning.
	r = runCtl(f.ctx, fixedClock(t0.Add(time.Minute)), f.args("status", "--json")...)
	var st Status
	if err := json.Unmarshal([]byte(r.out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.err)
	}
	if r.code != exitOK || len(st.Overrides) != 1 || st.Overrides[0].Link != "isp1" || st.Links[0].Override != linkstate.Drain || st.Links[0].State != linkstate.Down {
		t.Errorf("status after drain: exit %d, overrides %+v, links %+v, warnings %q", r.code, st.Overrides, st.Links, st.Warnings)
	}

	// history: the newest record is the drain, with who and why.
	r = runCtl(f.ctx, clock, f.args("history", "--limit", "1")...)
	if wantLine := "isp1 drained by " + by + ": ISP maintenance (until 2026-11-24 07:00:00)"; !strings.Contains(r.out, wantLine) {
		t.Errorf("history after drain: %q, want it to contain %q", r.out, wantLine)
	}

	// expiry: the leader's clock passes Until; the override goes away and
	// the verdict no longer carries it.
	fc.advance(t0.Add(2*time.Hour + time.Second))
	waitVerdict(t, f, "isp1 has no override after expiry", func(v cluster.VerdictRecord) bool {
		return v.Links["isp1"].Override == "" && v.Links["isp1"].State == linkstate.Up
	})
	if _, ok := readOverride(t, f, "isp1"); ok {
		t.Errorf("override still in etcd after expiry")
	}

	// drain without expiry, then undrain.
	r = runCtl(f.ctx, clock, f.args("drain", "isp2", "--reason", "cable swap", "--wait", "20s")...)
	if r.code != exitOK {
		t.Fatalf("second drain: exit status %d: %s", r.code, r.err)
	}
	if o, _ := readOverride(t, f, "isp2"); !o.Until.IsZero() {
		t.Errorf("drain without --for has expiry %s", o.Until)
	}
	r = runCtl(f.ctx, clock, f.args("undrain", "isp2", "--reason", "cable swapped", "--wait", "20s")...)
	if r.code != exitOK || !strings.Contains(r.out, "isp2 undrained") || !strings.Contains(r.out, "applied on fw1, fw2") {
		t.Fatalf("undrain: exit status %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
	if _, ok := readOverride(t, f, "isp2"); ok {
		t.Errorf("override still in etcd after undrain")
	}
	r = runCtl(f.ctx, clock, f.args("history", "--limit", "1", "--link", "isp2")...)
	if wantLine := "isp2 override cleared by " + by + ": cable swapped"; !strings.Contains(r.out, wantLine) {
		t.Errorf("history after undrain: %q, want it to contain %q", r.out, wantLine)
	}

	// undrain of a link without override does nothing.
	r = runCtl(f.ctx, clock, f.args("undrain", "isp2")...)
	if r.code != exitOK || !strings.Contains(r.out, "isp2 has no override") {
		t.Errorf("second undrain: exit status %d output %q", r.code, r.out)
	}
}

func TestDrainTimeout(t *testing.T) {
	f := newFixture(t, "office")
	seedHealthy(f)
	clock := fixedClock(t0)

	// No leader runs: no verdict ever reflects the drain.
	r := runCtl(f.ctx, clock, f.args("drain", "isp1", "--reason", "x", "--wait", "300ms")...)
	if r.code != exitFail || !strings.Contains(r.err, "no verdict reflects the change of isp1") {
		t.Errorf("drain without a leader: exit status %d, stderr %q; want %d and the missing verdict", r.code, r.err, exitFail)
	}

	// A leader runs but fw2 does not apply.
	startFakeCluster(f, "fw1")
	r = runCtl(f.ctx, clock, f.args("drain", "isp2", "--reason", "x", "--wait", "1s")...)
	if r.code != exitFail {
		t.Errorf("drain with fw2 not applying: exit status %d, want %d; stderr %q", r.code, exitFail, r.err)
	}
	if !strings.Contains(r.err, "is not applied by: fw2 (applied seq 4") || strings.Contains(r.err, "fw1") {
		t.Errorf("timeout message does not name fw2 alone with its applied seq: %q", r.err)
	}
}

func TestDrainUsage(t *testing.T) {
	f := newFixture(t, "office")
	seedHealthy(f)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"drain", "isp1"}, "--reason is required"},
		{[]string{"drain", "isp1", "--reason", "  "}, "--reason is required"},
		{[]string{"drain", "--reason", "x"}, "want exactly one LINK"},
		{[]string{"drain", "isp1", "isp2", "--reason", "x"}, "want exactly one LINK"},
		{[]string{"drain", "isp9", "--reason", "x"}, `unknown link "isp9" (links: isp1, isp2)`},
		{[]string{"drain", "isp1", "--reason", "x", "--for", "-1h"}, "must not be negative"},
		{[]string{"undrain", "isp9"}, `unknown link "isp9"`},
	} {
		r := runCtl(f.ctx, fixedClock(t0), f.args(tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.err, tc.want) {
			t.Errorf("%q: exit status %d stderr %q, want %d and %q", tc.args, r.code, r.err, exitUsage, tc.want)
		}
	}
	if _, ok := readOverride(t, f, "isp1"); ok {
		t.Errorf("a refused drain wrote an override")
	}
}
