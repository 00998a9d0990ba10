package linkstate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// A cold start: every link unknown, every node probing. The views settle
// one (node, link) at a time in some order. Whatever the order, a link
// that ends up must never leave the balance on the way (no drop and
// re-add), and every link gets exactly one transition, unknown→its state.

const settle = 1200 * time.Millisecond // 8 × 100ms + 400ms, the default profile

func settlePolicy(mode DecideMode, allDown AllDownMode, links ...string) Policy {
	p := policy(mode, allDown, links...)
	for i := range p.Links {
		p.Links[i].Settle = settle
	}
	return p
}

// settleEvent is one node's view of one link becoming known.
type settleEvent struct {
	node, link string
	state      State
}

// coldStart runs Decide from the zero verdict: first every node probing
// with nothing known, then the events one by one, step apart. It returns
// every verdict and every transition.
func coldStart(t *testing.T, pol Policy, nodes []string, events []settleEvent, step time.Duration) ([]Verdict, []Transition) {
	t.Helper()
	obs := Observations{}
	for _, n := range nodes {
		nv := NodeView{Alive: true, Links: map[string]Observation{}}
		for _, lp := range pol.Links {
			nv.Links[lp.Name] = Observation{Link: lp.Name, State: Unknown}
		}
		obs[n] = nv
	}
	now := t0
	v, trs := Decide(Verdict{}, obs, nil, pol, now)
	verdicts := []Verdict{v}
	all := slices.Clone(trs)
	for _, e := range events {
		now = now.Add(step)
		obs[e.node].Links[e.link] = Observation{Link: e.link, State: e.state}
		next, trs := Decide(v, obs, nil, pol, now)
		if next.Seq != v.Seq {
			verdicts = append(verdicts, next)
		}
		v = next
		all = append(all, trs...)
	}
	return verdicts, all
}

func permutations[T any](xs []T) [][]T {
	if len(xs) <= 1 {
		return [][]T{slices.Clone(xs)}
	}
	var out [][]T
	for i := range xs {
		rest := append(slices.Clone(xs[:i]), xs[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]T{xs[i]}, p...))
		}
	}
	return out
}

func TestColdStartEveryOrder(t *testing.T) {
	events := []settleEvent{
		{"fw1", "isp1", Up}, {"fw2", "isp1", Up},
		{"fw1", "isp2", Up}, {"fw2", "isp2", Up},
	}
	for _, mode := range []DecideMode{Any, Majority, All} {
		for _, allDown := range []AllDownMode{AllDownAll, AllDownNone, AllDownKeep} {
			pol := settlePolicy(mode, allDown, "isp1", "isp2")
			for _, order := range permutations(events) {
				name := fmt.Sprintf("%s/%s/%v", mode, allDown, order)
				verdicts, trs := coldStart(t, pol, []string{"fw1", "fw2"}, order, 20*time.Millisecond)
				for _, v := range verdicts {
					if !slices.Equal(v.Active, []string{"isp1", "isp2"}) {
						t.Fatalf("%s: verdict %d active %v (%s): a settling link left the balance", name, v.Seq, v.Active, v.ActiveReason)
					}
				}
				want := []string{"isp1 unknown→up", "isp2 unknown→up"}
				var got []string
				for _, tr := range trs {
					got = append(got, tr.Link+" "+tr.From.String()+"→"+tr.To.String())
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Fatalf("%s: transitions %v, want %v", name, got, want)
				}
			}
		}
	}
}

// Mixed outcomes: isp2 is dead from the start. Whatever the order, isp1
// never leaves the balance, isp2 leaves it once when it is seen down, and
// nothing goes down→up.
func TestColdStartOneLinkDead(t *testing.T) {
	events := []settleEvent{
		{"fw1", "isp1", Up}, {"fw2", "isp1", Up},
		{"fw1", "isp2", Down}, {"fw2", "isp2", Down},
	}
	for _, order := range permutations(events) {
		verdicts, trs := coldStart(t, settlePolicy(Any, AllDownAll, "isp1", "isp2"), []string{"fw1", "fw2"}, order, 20*time.Millisecond)
		left := false
		for _, v := range verdicts {
			if !v.IsActive("isp1") {
				t.Fatalf("%v: verdict %d drops isp1: %v", order, v.Seq, v.Active)
			}
			if left && v.IsActive("isp2") {
				t.Fatalf("%v: isp2 came back into the balance: %v", order, v.Active)
			}
			left = left || !v.IsActive("isp2")
		}
		last := verdicts[len(verdicts)-1]
		if !slices.Equal(last.Active, []string{"isp1"}) || last.Links["isp2"].State != Down {
			t.Fatalf("%v: final %v isp2 %v", order, last.Active, last.Links["isp2"].State)
		}
		for _, tr := range trs {
			if tr.From == Down || tr.From == Up {
				t.Fatalf("%v: transition %s %v→%v after settling", order, tr.Link, tr.From, tr.To)
			}
		}
	}
}

// A link whose probes never answer and never say down (a node that keeps
// reporting it unknown) stays in place until the Settle bound, then goes
// down once; NextEvent names that instant.
func TestColdStartNeverAnswers(t *testing.T) {
	pol := settlePolicy(Any, AllDownAll, "isp1", "isp2")
	obs := views("fw1 isp1=unknown isp2=unknown", "fw2 isp1=unknown isp2=unknown")
	v, _ := Decide(Verdict{}, obs, nil, pol, t0)
	if got := v.Links["isp2"].Probing; !got.Equal(t0) {
		t.Fatalf("probing since %v, want %v", got, t0)
	}

	obs = views("fw1 isp1=up isp2=unknown", "fw2 isp1=up isp2=unknown")
	v, trs := Decide(v, obs, nil, pol, t0.Add(500*time.Millisecond))
	if !slices.Equal(v.Active, []string{"isp1", "isp2"}) || len(trs) != 1 || trs[0].Link != "isp1" {
		t.Fatalf("isp1 up: active %v transitions %+v", v.Active, trs)
	}
	if !strings.Contains(v.ActiveReason, "not settled yet, kept in place: isp2") {
		t.Errorf("active reason %q does not say isp2 is kept", v.ActiveReason)
	}
	next, ok := NextEvent(v, nil, pol, t0.Add(500*time.Millisecond))
	if !ok || !next.Equal(t0.Add(settle)) {
		t.Fatalf("NextEvent = %v %v, want the settle bound %v", next, ok, t0.Add(settle))
	}

	// Just before the bound: nothing changes.
	same, trs := Decide(v, obs, nil, pol, t0.Add(settle-time.Millisecond))
	if same.Seq != v.Seq || len(trs) != 0 {
		t.Fatalf("before the bound: seq %d→%d, transitions %+v", v.Seq, same.Seq, trs)
	}
	// At the bound: down, once.
	v, trs = Decide(v, obs, nil, pol, t0.Add(settle))
	if len(trs) != 1 || trs[0].Link != "isp2" || trs[0].From != Unknown || trs[0].To != Down {
		t.Fatalf("at the bound: transitions %+v", trs)
	}
	if !strings.Contains(trs[0].Reason, "no probe answer within 1.2s") {
		t.Errorf("reason %q", trs[0].Reason)
	}
	if !slices.Equal(v.Active, []string{"isp1"}) {
		t.Fatalf("active %v", v.Active)
	}
	// Still silent later: stays down, no new transition, nothing pending.
	again, trs := Decide(v, obs, nil, pol, t0.Add(time.Minute))
	if again.Seq != v.Seq || len(trs) != 0 {
		t.Fatalf("after the bound: seq %d→%d transitions %+v", v.Seq, again.Seq, trs)
	}
	if _, ok := NextEvent(v, nil, pol, t0.Add(time.Minute)); ok {
		t.Error("NextEvent still pending after the link settled down")
	}
	// It answers at last: unknown is history, down→up as for any recovery.
	v, trs = Decide(v, views("fw1 isp1=up isp2=up", "fw2 isp1=up isp2=up"), nil, pol, t0.Add(2*time.Minute))
	if len(trs) != 1 || trs[0].From != Down || trs[0].To != Up || !slices.Equal(v.Active, []string{"isp1", "isp2"}) {
		t.Fatalf("recovery: %+v active %v", trs, v.Active)
	}
}

// The bound counts from when a node was first seen probing, not from the
// first verdict: a leader that decided before any firewall joined does not
// call links down the moment their first (unknown) observation arrives.
func TestColdStartBoundFromFirstProbe(t *testing.T) {
	pol := settlePolicy(Any, AllDownNone, "isp1", "isp2")
	v, _ := Decide(Verdict{}, views("witness"), nil, pol, t0)
	if !v.Links["isp1"].Probing.IsZero() {
		t.Fatal("probing set with no node probing")
	}
	later := t0.Add(time.Hour)
	v, trs := Decide(v, views("witness", "fw1 isp1=unknown isp2=unknown"), nil, pol, later)
	if len(trs) != 0 || v.Links["isp1"].State != Unknown || !v.Links["isp1"].Probing.Equal(later) {
		t.Fatalf("first probe an hour later: %+v %+v", trs, v.Links["isp1"])
	}
	if !slices.Equal(v.Active, []string{"isp1", "isp2"}) {
		t.Fatalf("active %v", v.Active)
	}
}

// No link up yet, one already down, the other settling: the settling link
// keeps carrying traffic whatever all_down says (it is not all down).
func TestColdStartSettlingBeatsAllDown(t *testing.T) {
	pol := settlePolicy(Any, AllDownNone, "isp1", "isp2")
	v, _ := Decide(Verdict{}, views("fw1 isp1=unknown isp2=unknown"), nil, pol, t0)
	v, trs := Decide(v, views("fw1 isp1=down isp2=unknown"), nil, pol, t0.Add(100*time.Millisecond))
	if v.AllDown || !slices.Equal(v.Active, []string{"isp2"}) {
		t.Fatalf("active %v all_down %v (%s)", v.Active, v.AllDown, v.ActiveReason)
	}
	if len(trs) != 1 || trs[0].Link != "isp1" || trs[0].To != Down {
		t.Fatalf("transitions %+v", trs)
	}
	// isp2 times out too: now all_down=none applies.
	v, _ = Decide(v, views("fw1 isp1=down isp2=unknown"), nil, pol, t0.Add(settle))
	if !v.AllDown || len(v.Active) != 0 {
		t.Fatalf("after isp2's bound: active %v all_down %v", v.Active, v.AllDown)
	}
}

// Tiers: a tier-2 link that answers first does not push out tier-1 links
// that are still settling.
func TestColdStartTiers(t *testing.T) {
	pol := settlePolicy(Any, AllDownAll, "isp1", "isp2", "lte:2")
	v, _ := Decide(Verdict{}, views("fw1 isp1=unknown isp2=unknown lte=unknown"), nil, pol, t0)
	v, _ = Decide(v, views("fw1 isp1=unknown isp2=unknown lte=up"), nil, pol, t0.Add(100*time.Millisecond))
	if !slices.Equal(v.Active, []string{"isp1", "isp2"}) {
		t.Fatalf("lte up first: active %v (%s)", v.Active, v.ActiveReason)
	}
	v, _ = Decide(v, views("fw1 isp1=down isp2=down lte=up"), nil, pol, t0.Add(200*time.Millisecond))
	if !slices.Equal(v.Active, []string{"lte"}) {
		t.Fatalf("tier 1 down: active %v", v.Active)
	}
}

// A restart with a previous verdict (the state file's or etcd's) and every
// view unknown changes nothing: the verdict in force stays, no bound runs
// (the link is not unknown), no transition.
func TestRestartKeepsVerdict(t *testing.T) {
	pol := settlePolicy(Any, AllDownAll, "isp1", "isp2")
	prev, _ := Decide(Verdict{}, views("fw1 isp1=up isp2=down", "fw2 isp1=up isp2=down"), nil, pol, t0)
	for _, obs := range []Observations{
		views("fw1 isp1=unknown isp2=unknown"),
		views("fw1 isp1=unknown isp2=unknown", "fw2 isp1=unknown isp2=unknown"),
		views("fw1"),
	} {
		v, trs := Decide(prev, obs, nil, pol, t0.Add(time.Hour))
		if v.Seq != prev.Seq || len(trs) != 0 {
			t.Fatalf("%v: seq %d→%d transitions %+v", obs, prev.Seq, v.Seq, trs)
		}
		if _, ok := NextEvent(v, nil, pol, t0.Add(time.Hour)); ok {
			t.Errorf("%v: NextEvent pending", obs)
		}
	}
}

// Answers that have not yet reached rise (a slow-rising link) are not
// silence: the link stays in place past the bound until its probes settle.
func TestColdStartAnsweredIsNotSilence(t *testing.T) {
	pol := settlePolicy(Any, AllDownAll, "isp1", "isp2")
	v, _ := Decide(Verdict{}, views("fw1 isp1=unknown isp2=unknown"), nil, pol, t0)
	answered := views("fw1 isp1=up isp2=unknown")
	o := answered["fw1"].Links["isp2"]
	o.LastOK = t0.Add(100 * time.Millisecond)
	answered["fw1"].Links["isp2"] = o
	v, _ = Decide(v, answered, nil, pol, t0.Add(200*time.Millisecond))
	if !v.Links["isp2"].Probing.IsZero() {
		t.Fatal("an answered link still runs the settle bound")
	}
	if _, ok := NextEvent(v, nil, pol, t0.Add(200*time.Millisecond)); ok {
		t.Error("NextEvent pending for an answered link")
	}
	v, trs := Decide(v, answered, nil, pol, t0.Add(time.Minute))
	if len(trs) != 0 || !slices.Equal(v.Active, []string{"isp1", "isp2"}) {
		t.Fatalf("a minute later: %+v active %v", trs, v.Active)
	}
}
