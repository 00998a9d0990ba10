package linkstate

import (
	"math"
	"strings"
	"testing"
	"time"
)

var testDamping = Damping{Penalty: 1000, HalfLife: time.Minute, Suppress: 3000, Reuse: 750}

// flap decides isp1 up and down alternately, one second apart, starting
// with up at start; it returns the verdict after the last step and every
// transition on the way.
func flap(t *testing.T, v Verdict, pol Policy, start time.Time, n int) (Verdict, []Transition, time.Time) {
	t.Helper()
	var all []Transition
	now := start
	for i := range n {
		st := "up"
		if i%2 == 1 {
			st = "down"
		}
		var trs []Transition
		v, trs = Decide(v, views("fw1 isp1="+st), nil, pol, now)
		all = append(all, trs...)
		now = now.Add(time.Second)
	}
	return v, all, now.Add(-time.Second)
}

func TestDampingSuppressAndReuse(t *testing.T) {
	pol := policy(Any, AllDownAll, "isp1")
	pol.Damping = testDamping

	// up, then three down→up flaps one second apart: not yet suppressed.
	v, trs, last := flap(t, Verdict{}, pol, t0, 7)
	if len(trs) != 7 || v.Links["isp1"].Suppressed || v.Links["isp1"].State != Up {
		t.Fatalf("after 3 flaps: %+v, %d transitions", v.Links["isp1"], len(trs))
	}
	// Expected penalty: 1000 at t0+2s, +4s, +6s, each decayed to +6s.
	want := 0.0
	for _, at := range []time.Duration{2, 4, 6} {
		want += 1000 * math.Exp2(-float64(6-at)/60)
	}
	if lv := v.Links["isp1"]; math.Abs(lv.Penalty-want) > 1e-9 || !lv.PenaltyAt.Equal(last) {
		t.Fatalf("penalty %v at %v, want %v at %v", lv.Penalty, lv.PenaltyAt, want, last)
	}

	// Fourth flap: the penalty passes 3000 and isp1 is held down.
	v, _ = Decide(v, views("fw1 isp1=down"), nil, pol, last.Add(time.Second))
	down := v
	v, trs = Decide(v, views("fw1 isp1=up"), nil, pol, last.Add(2*time.Second))
	lv := v.Links["isp1"]
	want = want*math.Exp2(-2.0/60) + 1000
	if !lv.Suppressed || lv.State != Down || lv.Observed != Up || trs != nil || v.Seq != down.Seq+1 {
		t.Fatalf("fourth flap: %+v transitions %+v", lv, trs)
	}
	if !strings.HasPrefix(lv.Reason, "flap damping: penalty "+fmtNum(want)+" > 3000, held down until it decays to 750; fw1 up") {
		t.Errorf("reason %q", lv.Reason)
	}
	if !v.AllDown {
		t.Error("a suppressed link is not up")
	}

	// Time passing changes nothing until the penalty reaches Reuse, exactly
	// when NextEvent says.
	reuse, ok := NextEvent(v, nil, pol, lv.PenaltyAt)
	wantReuse := lv.PenaltyAt.Add(time.Duration(math.Ceil(float64(time.Minute) * math.Log2(lv.Penalty/750))))
	if !ok || !reuse.Equal(wantReuse) {
		t.Fatalf("NextEvent %v %v, want %v", reuse, ok, wantReuse)
	}
	if got := lv.PenaltyNow(pol.Damping, lv.PenaltyAt.Add(time.Minute)); math.Abs(got-lv.Penalty/2) > 1e-9 {
		t.Errorf("penalty one half-life later %v, want %v", got, lv.Penalty/2)
	}
	for _, at := range []time.Time{lv.PenaltyAt.Add(time.Minute), reuse.Add(-1)} {
		if v2, trs := Decide(v, views("fw1 isp1=up"), nil, pol, at); v2.Seq != v.Seq || trs != nil {
			t.Fatalf("at %v: verdict changed with unchanged input", at)
		}
	}
	if p := lv.PenaltyNow(pol.Damping, reuse.Add(-1)); p < 750 {
		t.Errorf("penalty %v below reuse before NextEvent", p)
	}
	v2, trs := Decide(v, views("fw1 isp1=up"), nil, pol, reuse)
	lv2 := v2.Links["isp1"]
	if lv2.Suppressed || lv2.State != Up || len(trs) != 1 || trs[0].From != Down || trs[0].To != Up {
		t.Fatalf("at reuse: %+v transitions %+v", lv2, trs)
	}
	if !strings.HasPrefix(trs[0].Reason, "flap damping ended: penalty decayed to 750; fw1 up") {
		t.Errorf("reason %q", trs[0].Reason)
	}
	if math.Abs(lv2.Penalty-750) > 1e-6 || !lv2.PenaltyAt.Equal(reuse) {
		t.Errorf("penalty %v at %v, want 750 at %v", lv2.Penalty, lv2.PenaltyAt, reuse)
	}
	if _, ok := NextEvent(v2, nil, pol, reuse); ok {
		t.Error("NextEvent after suppression ended")
	}

	// Suppression that ends while the link is down changes no state, but the
	// verdict, and the penalty keeps charging while suppressed.
	v3, trs := Decide(v, views("fw1 isp1=down"), nil, pol, lv.PenaltyAt.Add(time.Second))
	if trs != nil || !v3.Links["isp1"].Suppressed {
		t.Fatalf("down while suppressed: %+v", v3.Links["isp1"])
	}
	v4, _ := Decide(v3, views("fw1 isp1=up"), nil, pol, lv.PenaltyAt.Add(2*time.Second))
	if p := v4.Links["isp1"].Penalty; p <= lv.Penalty || !v4.Links["isp1"].Suppressed {
		t.Fatalf("flap while suppressed: penalty %v (was %v)", p, lv.Penalty)
	}
	if later, _ := NextEvent(v4, nil, pol, lv.PenaltyAt); !later.After(reuse) {
		t.Errorf("flapping while suppressed should delay reuse: %v, not after %v", later, reuse)
	}
	v5, _ := Decide(v3, views("fw1 isp1=down"), nil, pol, reuse)
	if lv := v5.Links["isp1"]; lv.Suppressed || lv.State != Down || v5.Seq != v3.Seq+1 || !strings.HasPrefix(lv.Reason, "flap damping ended: penalty decayed to 750; fw1 down") {
		t.Fatalf("suppression ended while down: %+v", lv)
	}
}

func TestDampingDisabled(t *testing.T) {
	for _, d := range []Damping{{}, {Penalty: 1000}, {Penalty: 1000, HalfLife: time.Minute, Suppress: 3000}} {
		pol := policy(Any, AllDownAll, "isp1")
		pol.Damping = d
		v, trs, _ := flap(t, Verdict{}, pol, t0, 21)
		if len(trs) != 21 || v.Links["isp1"].Penalty != 0 || v.Links["isp1"].Suppressed {
			t.Errorf("%+v: %d transitions, link %+v", d, len(trs), v.Links["isp1"])
		}
	}
	// Turning damping off releases a suppressed link.
	pol := policy(Any, AllDownAll, "isp1")
	pol.Damping = testDamping
	v, _, last := flap(t, Verdict{}, pol, t0, 9)
	if !v.Links["isp1"].Suppressed {
		t.Fatal("not suppressed after 4 flaps")
	}
	pol.Damping = Damping{}
	if next, ok := NextEvent(v, nil, pol, last); !ok || !next.Equal(last) {
		t.Errorf("damping off with a suppressed link: NextEvent %v %v, want now", next, ok)
	}
	v, trs := Decide(v, views("fw1 isp1=up"), nil, pol, last)
	if len(trs) != 1 || v.Links["isp1"].State != Up || v.Links["isp1"].Penalty != 0 {
		t.Errorf("damping off: %+v", v.Links["isp1"])
	}
}

func TestDampingUnderOverride(t *testing.T) {
	// Penalties accrue on what the probes see, even while a drain holds the
	// link; when the drain goes, the suppression shows.
	pol := policy(Any, AllDownAll, "isp1")
	pol.Damping = testDamping
	drain := []Override{{Link: "isp1", Action: Drain, By: "alice"}}
	var v Verdict
	now := t0
	for i := range 9 {
		st := "up"
		if i%2 == 1 {
			st = "down"
		}
		var trs []Transition
		v, trs = Decide(v, views("fw1 isp1="+st), drain, pol, now)
		if i > 0 && trs != nil {
			t.Fatalf("step %d: transitions under a drain: %+v", i, trs)
		}
		now = now.Add(time.Second)
	}
	if lv := v.Links["isp1"]; !lv.Suppressed || lv.State != Down || lv.Override != Drain {
		t.Fatalf("%+v", lv)
	}
	v, trs := Decide(v, views("fw1 isp1=up"), nil, pol, now)
	if trs != nil || !strings.HasPrefix(v.Links["isp1"].Reason, "drain lifted; flap damping: penalty") {
		t.Fatalf("%+v %+v", v.Links["isp1"], trs)
	}
}
