package main

import (
	"slices"
	"testing"
	"time"

	"gwstated/cluster"
	"gwstated/linkstate"
)

var testOpts = ScheduleOptions{
	Duration: 10 * time.Minute, Firewalls: []string{"fw1", "fw2"}, Links: []string{"isp1", "isp2"},
	MinFault: 3 * time.Second, MaxFault: 20 * time.Second, Quiet: 15 * time.Second, Concurrent: 2,
}

func TestGenerateReplays(t *testing.T) {
	a, b := Generate(42, testOpts), Generate(42, testOpts)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed gave two schedules")
	}
	if c := Generate(43, testOpts); slices.Equal(a, c) {
		t.Error("seeds 42 and 43 gave the same schedule")
	}
}

func TestGenerateRules(t *testing.T) {
	kinds := map[Kind]int{}
	for seed := range uint64(50) {
		s := Generate(seed, testOpts)
		if len(s) == 0 {
			t.Fatalf("seed %d: empty schedule", seed)
		}
		for i, f := range s {
			kinds[f.Kind]++
			if f.At < 0 || f.End() > testOpts.Duration {
				t.Errorf("seed %d: %v outside the run", seed, f)
			}
			if f.Dur < testOpts.MinFault || f.Dur > testOpts.MaxFault {
				t.Errorf("seed %d: %v lasts out of bounds", seed, f)
			}
			if f.Kind == LossBurst && (f.Loss < 10 || f.Loss > 60) {
				t.Errorf("seed %d: %v loss out of 10..60", seed, f)
			}
			active := 0 // at f's start, f included: the most at once is at some start
			for j, g := range s {
				if g.At <= f.At && f.At < g.End() {
					active++
				}
				if j != i && g.At < f.End() && f.At < g.End() && g.Target == f.Target {
					t.Errorf("seed %d: %v and %v hold %s at once", seed, f, g, f.Target)
				}
			}
			if active > testOpts.Concurrent {
				t.Errorf("seed %d: %d faults active when %v starts", seed, active, f)
			}
		}
		if len(QuietWindows(s, testOpts.Duration, testOpts.Quiet)) == 0 {
			t.Errorf("seed %d: no quiet window of %v", seed, testOpts.Quiet)
		}
	}
	for _, k := range Kinds {
		if kinds[k] == 0 {
			t.Errorf("no %s fault in 50 schedules", k)
		}
	}
}

// TestGenerateEveryKind: kinds are dealt in rounds, so every schedule of at
// least len(Kinds) faults injects every kind, and the first len(Kinds)
// faults (by draw order) are all different.
func TestGenerateEveryKind(t *testing.T) {
	for seed := range uint64(50) {
		s := Generate(seed, testOpts)
		if len(s) < len(Kinds) {
			t.Fatalf("seed %d: only %d faults in %v", seed, len(s), testOpts.Duration)
		}
		seen := map[Kind]int{}
		for _, f := range s {
			seen[f.Kind]++
		}
		for _, k := range Kinds {
			if seen[k] == 0 {
				t.Errorf("seed %d: no %s fault in %d faults", seed, k, len(s))
			}
		}
		// Rounds: no kind can be more than one ahead of another.
		lo, hi := len(s), 0
		for _, k := range Kinds {
			lo, hi = min(lo, seen[k]), max(hi, seen[k])
		}
		if hi-lo > 1 {
			t.Errorf("seed %d: kind counts range %d..%d, want rounds", seed, lo, hi)
		}
	}
}

func TestQuietWindows(t *testing.T) {
	s := []Fault{{At: 5 * time.Second, Dur: 10 * time.Second}, {At: 8 * time.Second, Dur: 20 * time.Second}, {At: 50 * time.Second, Dur: time.Second}}
	got := QuietWindows(s, 90*time.Second, 15*time.Second)
	want := [][2]time.Duration{{28 * time.Second, 50 * time.Second}, {51 * time.Second, 90 * time.Second}}
	if !slices.Equal(got, want) {
		t.Errorf("QuietWindows = %v, want %v", got, want)
	}
}

func TestConverged(t *testing.T) {
	ok := Observed{VerdictSeq: 7, Up: []string{"isp1", "isp2"}, Active: []string{"isp1", "isp2"}, Working: []string{"isp1", "isp2"},
		Applied: map[string]string{"fw1": "h", "fw2": "h"}, Expected: map[string]string{"fw1": "h", "fw2": "h"}}
	if why := Converged(ok); why != "" {
		t.Errorf("converged cluster: %s", why)
	}
	cases := map[string]func(*Observed){
		"fw2 behind":             func(o *Observed) { o.Applied["fw2"] = "old" },
		"verdict misses a cut":   func(o *Observed) { o.Working = []string{"isp1"} },
		"verdict misses restore": func(o *Observed) { o.Up = []string{"isp1"} },
		"drained link up":        func(o *Observed) { o.Drained = []string{"isp2"} },
	}
	for name, edit := range cases {
		o := ok
		o.Applied = map[string]string{"fw1": "h", "fw2": "h"}
		edit(&o)
		if Converged(o) == "" {
			t.Errorf("%s: reported converged", name)
		}
	}
	drained := ok
	drained.Drained, drained.Up = []string{"isp2"}, []string{"isp1"}
	if why := Converged(drained); why != "" {
		t.Errorf("drained isp2 down: %s", why)
	}
}

func TestAllDropped(t *testing.T) {
	o := Observed{VerdictSeq: 3}
	if AllDropped(o, []string{"isp1"}) == "" {
		t.Error("no active link while isp1 works: not reported")
	}
	o.Drained = []string{"isp1"}
	if why := AllDropped(o, []string{"isp1"}); why != "" {
		t.Errorf("isp1 drained: %s", why)
	}
	if why := AllDropped(Observed{Active: []string{"isp2"}}, []string{"isp1"}); why != "" {
		t.Errorf("isp2 active: %s", why)
	}
}

func TestAuditProblems(t *testing.T) {
	ev := []linkstate.Evidence{{}}
	recs := []cluster.AuditRecord{
		{Seq: 1, Kind: cluster.KindTransition, VerdictSeq: 2, Link: "isp1", From: linkstate.Up, To: linkstate.Down, Evidence: ev},
		{Seq: 2, Kind: cluster.KindOverride, Link: "isp2"},
		{Seq: 3, Kind: cluster.KindTransition, VerdictSeq: 3, Link: "isp1", From: linkstate.Down, To: linkstate.Up, Evidence: ev},
	}
	seen := map[uint64]map[string]string{1: {"isp1": "up"}, 2: {"isp1": "down"}, 3: {"isp1": "up"}}
	if p := AuditProblems(recs, seen); len(p) != 0 {
		t.Errorf("clean log: %v", p)
	}
	dup := append(slices.Clone(recs), cluster.AuditRecord{Seq: 4, Kind: cluster.KindTransition, VerdictSeq: 3, Link: "isp1", Evidence: ev})
	if p := AuditProblems(dup, seen); len(p) != 1 {
		t.Errorf("duplicate record: %v", p)
	}
	noEv := slices.Clone(recs)
	noEv[0].Evidence = nil
	if p := AuditProblems(noEv, seen); len(p) != 1 {
		t.Errorf("record without evidence: %v", p)
	}
	seen[4] = map[string]string{"isp1": "down"}
	if p := AuditProblems(recs, seen); len(p) != 1 {
		t.Errorf("transition 3→4 without a record: %v", p)
	}
}

func TestBound(t *testing.T) {
	b := Bound(100*time.Millisecond, 400*time.Millisecond, 8, 5, 3*time.Second, 15*time.Second, 2*time.Second, 5*time.Second)
	if want := 1200*time.Millisecond + 6*time.Second + 15*time.Second + 2*time.Second + 5*time.Second; b != want {
		t.Errorf("Bound = %v, want %v", b, want)
	}
	if Growth("rss", 100, 150, 1.5) != "" || Growth("rss", 100, 151, 1.5) == "" {
		t.Error("Growth threshold wrong")
	}
}
