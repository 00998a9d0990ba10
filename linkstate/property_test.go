package linkstate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// world is a random cluster whose views, liveness and overrides change step
// by step.
type world struct {
	r     *rand.Rand
	nodes []string
	pol   Policy
	alive map[string]bool
	view  map[string]map[string]State // node → link → state; absent: no observation
	ovs   []Override
	now   time.Time
}

func newWorld(seed uint64) *world {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	w := &world{r: r, alive: map[string]bool{}, view: map[string]map[string]State{}, now: t0}
	for i := range 1 + r.IntN(4) {
		n := fmt.Sprintf("fw%d", i+1)
		w.nodes = append(w.nodes, n)
		w.alive[n] = r.IntN(5) > 0
		w.view[n] = map[string]State{}
	}
	w.pol.Decide = []DecideMode{Any, Majority, All, ""}[r.IntN(4)]
	w.pol.AllDown = []AllDownMode{AllDownAll, AllDownNone, AllDownKeep}[r.IntN(3)]
	if r.IntN(2) == 0 {
		w.pol.Damping = Damping{Penalty: 1000, HalfLife: time.Duration(1+r.IntN(5)) * time.Minute, Suppress: 1500 + float64(r.IntN(1500)), Reuse: 300 + float64(r.IntN(500))}
	}
	for i := range 1 + r.IntN(5) {
		w.pol.Links = append(w.pol.Links, LinkPolicy{Name: fmt.Sprintf("l%d", i), Tier: 1 + r.IntN(2)})
	}
	return w
}

// step changes one or two things and moves the clock on.
func (w *world) step() {
	r := w.r
	for range 1 + r.IntN(2) {
		n := w.nodes[r.IntN(len(w.nodes))]
		link := w.pol.Links[r.IntN(len(w.pol.Links))].Name
		switch k := r.IntN(20); {
		case k == 0:
			w.alive[n] = !w.alive[n]
		case k == 1:
			delete(w.view[n], link)
		case k == 2:
			w.view[n][link] = Unknown
		case k == 3 && len(w.ovs) > 0:
			w.ovs = slices.Delete(w.ovs, 0, 1)
		case k == 4:
			o := Override{Link: link, Action: []Action{Drain, ForceUp}[r.IntN(2)], By: "op", Since: w.now}
			if r.IntN(3) > 0 {
				o.Until = w.now.Add(time.Duration(1+r.IntN(600)) * time.Second)
			}
			if r.IntN(8) == 0 {
				o.Link = "nope"
			}
			w.ovs = append(w.ovs, o)
		default:
			w.view[n][link] = []State{Up, Down}[r.IntN(2)]
		}
	}
	if r.IntN(4) == 0 {
		w.now = w.now.Add(time.Duration(r.IntN(90_000)) * time.Millisecond)
	} else {
		w.now = w.now.Add(time.Duration(r.IntN(5_000)) * time.Millisecond)
	}
}

// observations builds the Observations map, inserting nodes and links in an
// order drawn from shuffle.
func (w *world) observations(shuffle *rand.Rand) Observations {
	obs := Observations{}
	for _, i := range shuffle.Perm(len(w.nodes)) {
		n := w.nodes[i]
		nv := NodeView{Alive: w.alive[n], Links: map[string]Observation{}}
		for _, j := range shuffle.Perm(len(w.pol.Links)) {
			link := w.pol.Links[j].Name
			if s, ok := w.view[n][link]; ok {
				nv.Links[link] = Observation{Link: link, State: s, Loss: float64(j)}
			}
		}
		obs[n] = nv
	}
	return obs
}

func TestPropertyRandomSequences(t *testing.T) {
	// What the sequences reached, so the properties are not checked on
	// trivial input only.
	var seen struct{ transitions, suppressed, overridden, allDown, impaired, pending int }
	defer func() {
		t.Logf("reached: %+v", seen)
		if seen.transitions == 0 || seen.suppressed == 0 || seen.overridden == 0 || seen.allDown == 0 || seen.impaired == 0 || seen.pending == 0 {
			t.Errorf("random sequences too tame: %+v", seen)
		}
	}()
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := newWorld(seed)
			shuffle := rand.New(rand.NewPCG(seed, 1))
			var prev Verdict
			for step := range 150 {
				w.step()
				obs := w.observations(shuffle)
				v, trs := Decide(prev, obs, w.ovs, w.pol, w.now)

				// Determinism: other map construction, other override order.
				ovs := slices.Clone(w.ovs)
				shuffle.Shuffle(len(ovs), func(i, j int) { ovs[i], ovs[j] = ovs[j], ovs[i] })
				v2, trs2 := Decide(prev, w.observations(shuffle), ovs, w.pol, w.now)
				if !reflect.DeepEqual(v, v2) || !reflect.DeepEqual(trs, trs2) {
					t.Fatalf("step %d: not deterministic:\n%+v\n%+v", step, v, v2)
				}

				// Seq moves by one exactly when the verdict changed; one
				// transition per link whose state changed.
				changed := !v.Equal(prev) || prev.Links == nil
				if changed != (v.Seq == prev.Seq+1) || !changed && (v.Seq != prev.Seq || trs != nil) {
					t.Fatalf("step %d: changed %v, seq %d→%d, transitions %v", step, changed, prev.Seq, v.Seq, trs)
				}
				var want []string
				for _, lp := range w.pol.Links {
					if prev.Links[lp.Name].State != v.Links[lp.Name].State {
						want = append(want, lp.Name)
					}
				}
				var got []string
				for _, tr := range trs {
					got = append(got, tr.Link)
					if tr.From != prev.Links[tr.Link].State || tr.To != v.Links[tr.Link].State || tr.From == tr.To || len(tr.Evidence) != len(w.nodes) {
						t.Fatalf("step %d: bad transition %+v", step, tr)
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("step %d: transitions for %v, want %v", step, got, want)
				}
				if !v.AllDown && len(v.Active) == 0 {
					t.Fatalf("step %d: links up but none active: %+v", step, v)
				}

				// No transition without changed input: the same input again,
				// now or at any time before NextEvent, changes nothing.
				later := w.now.Add(time.Duration(w.r.IntN(3_600_000)) * time.Millisecond)
				if next, ok := NextEvent(v, w.ovs, w.pol, w.now); ok {
					if next.Before(w.now) {
						t.Fatalf("step %d: NextEvent %v before now %v", step, next, w.now)
					}
					later = w.now.Add(time.Duration(w.r.Int64N(int64(next.Sub(w.now)) + 1)))
					if later.Equal(next) {
						later = later.Add(-1)
					}
				}
				for _, at := range []time.Time{w.now, later} {
					if at.Before(w.now) {
						continue
					}
					v3, trs3 := Decide(v, obs, w.ovs, w.pol, at)
					if trs3 != nil || v3.Seq != v.Seq {
						t.Fatalf("step %d: unchanged input at %v (now %v) gave seq %d→%d, transitions %+v", step, at, w.now, v.Seq, v3.Seq, trs3)
					}
				}
				seen.transitions += len(trs)
				for _, lv := range v.Links {
					if lv.Suppressed {
						seen.suppressed++
					}
					if lv.Override != "" {
						seen.overridden++
					}
				}
				if v.AllDown {
					seen.allDown++
				}
				if len(v.Impaired) > 0 {
					seen.impaired++
				}
				if _, ok := NextEvent(v, w.ovs, w.pol, w.now); ok {
					seen.pending++
				}
				prev = v
			}
		})
	}
}

// A link flapping for hours: damping bounds its up transitions in every
// half-life window. Within a window of length H, k up transitions caused by
// a down→up that did not suppress each added P and left the penalty ≤ S;
// at the last of them every one has decayed by at most half, so k·P/2 ≤ S,
// k ≤ ⌊2S/P⌋. A suppression, once started, lasts at least H·log2(S/R), so
// a window holds at most ⌊1/log2(S/R)⌋+1 suppression ends. The first
// unknown→up adds one more, once.
func TestPropertyDampingBoundsFlaps(t *testing.T) {
	d := Damping{Penalty: 1000, HalfLife: 5 * time.Minute, Suppress: 3000, Reuse: 750}
	perWindow := int(math.Floor(2*d.Suppress/d.Penalty)) + int(math.Floor(1/math.Log2(d.Suppress/d.Reuse))) + 1
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			mode := []DecideMode{Any, Majority, All}[seed%3]
			var steps []Observations
			var times []time.Time
			now := t0
			// Bursts of flapping (each node's view random every 1-4 s) for up
			// to 30 minutes, then calm (steady up or down) for up to an hour,
			// so suppressions start and end many times.
			for now.Before(t0.Add(12 * time.Hour)) {
				burst := now.Add(time.Duration(1+r.IntN(30)) * time.Minute)
				for ; now.Before(burst); now = now.Add(time.Duration(1+r.IntN(4)) * time.Second) {
					var specs []string
					for _, n := range []string{"fw1", "fw2", "fw3"} {
						specs = append(specs, n+" isp1="+[]string{"up", "down"}[r.IntN(2)])
					}
					steps = append(steps, views(specs...))
					times = append(times, now)
				}
				calm := now.Add(time.Duration(1+r.IntN(60)) * time.Minute)
				st := []string{"up", "down"}[r.IntN(2)]
				for ; now.Before(calm); now = now.Add(10 * time.Second) {
					steps = append(steps, views("fw1 isp1="+st, "fw2 isp1="+st, "fw3 isp1="+st))
					times = append(times, now)
				}
			}
			ups := func(d Damping) []time.Time {
				pol := policy(mode, AllDownAll, "isp1")
				pol.Damping = d
				var v Verdict
				var at []time.Time
				for i, obs := range steps {
					var trs []Transition
					v, trs = Decide(v, obs, nil, pol, times[i])
					// Reuse events between steps: run them as the leader would.
					for next, ok := NextEvent(v, nil, pol, times[i]); ok && i+1 < len(steps) && next.Before(times[i+1]); next, ok = NextEvent(v, nil, pol, next) {
						var more []Transition
						seq := v.Seq
						v, more = Decide(v, obs, nil, pol, next)
						if v.Seq != seq+1 {
							t.Fatalf("NextEvent %v brought no change", next)
						}
						trs = append(trs, more...)
					}
					for _, tr := range trs {
						if tr.To == Up {
							at = append(at, tr.Time)
						}
					}
				}
				return at
			}
			// Most up transitions within any window of one half-life,
			// not counting the first unknown→up.
			maxInWindow := func(at []time.Time) int {
				most := 0
				for i := 1; i < len(at); i++ {
					n := 0
					for _, u := range at[i:] {
						if u.Sub(at[i]) < d.HalfLife {
							n++
						}
					}
					most = max(most, n)
				}
				return most
			}
			damped, undamped := ups(d), ups(Damping{})
			if m := maxInWindow(damped); m > perWindow {
				t.Fatalf("%d up transitions within one half-life (%v), bound %d", m, d.HalfLife, perWindow)
			}
			// The sequence does flap: without damping it breaks the bound.
			if m := maxInWindow(undamped); m <= perWindow {
				t.Fatalf("undamped: at most %d up transitions per half-life, bound %d: the sequence does not test damping", m, perWindow)
			}
			t.Logf("%s: most up transitions per half-life: %d undamped, %d damped, bound %d; in all %d undamped, %d damped",
				mode, maxInWindow(undamped), maxInWindow(damped), perWindow, len(undamped), len(damped))
		})
	}
}
