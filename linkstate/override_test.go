package linkstate

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOverrides(t *testing.T) {
	pol := policy(Any, AllDownAll, "isp1", "isp2")
	bothUp := views("fw1 isp1=up isp2=up")
	base, _ := Decide(Verdict{}, bothUp, nil, pol, t0)
	until := time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)
	drain := Override{Link: "isp1", Action: Drain, Reason: "ISP maintenance", By: "alice", Since: t0, Until: until}

	t.Run("drain", func(t *testing.T) {
		v, trs := Decide(base, bothUp, []Override{drain}, pol, t0.Add(time.Minute))
		lv := v.Links["isp1"]
		want := "drained by alice: ISP maintenance until 2026-11-24T05:00:00Z"
		if lv.State != Down || lv.Observed != Up || lv.Override != Drain || lv.Reason != want {
			t.Fatalf("isp1 %+v", lv)
		}
		if len(trs) != 1 || trs[0].From != Up || trs[0].To != Down || !strings.HasPrefix(trs[0].Reason, want+"; ") {
			t.Fatalf("transitions %+v", trs)
		}
		if !slices.Equal(v.Active, []string{"isp2"}) {
			t.Errorf("active %v", v.Active)
		}
		// A drained link seen down by a node impairs nobody.
		v2, _ := Decide(v, views("fw1 isp1=down isp2=up"), []Override{drain}, pol, t0.Add(2*time.Minute))
		if v2.Impaired != nil || v2.Links["isp1"].Observed != Down || v2.Links["isp1"].Reason != want {
			t.Errorf("impaired %v, isp1 %+v", v2.Impaired, v2.Links["isp1"])
		}

		t.Run("expiry", func(t *testing.T) {
			// One nanosecond before Until it holds; at Until it has expired.
			v2, trs := Decide(v, bothUp, []Override{drain}, pol, until.Add(-1))
			if trs != nil || v2.Seq != v.Seq {
				t.Fatalf("before expiry: %+v", trs)
			}
			if next, ok := NextEvent(v, []Override{drain}, pol, t0.Add(time.Minute)); !ok || !next.Equal(until) {
				t.Errorf("NextEvent %v %v, want %v", next, ok, until)
			}
			v3, trs := Decide(v, bothUp, []Override{drain}, pol, until)
			want := "drain by alice (ISP maintenance) expired at 2026-11-24T05:00:00Z; fw1 up: any: 1 of 1 views up"
			if len(trs) != 1 || trs[0].To != Up || v3.Links["isp1"].Override != "" || v3.Links["isp1"].Reason != want {
				t.Fatalf("at expiry: isp1 %+v transitions %+v", v3.Links["isp1"], trs)
			}
			if _, ok := NextEvent(v3, []Override{drain}, pol, until); ok {
				t.Error("NextEvent after expiry should have nothing pending")
			}
		})
		t.Run("lifted", func(t *testing.T) {
			v3, trs := Decide(v, bothUp, nil, pol, t0.Add(3*time.Minute))
			if len(trs) != 1 || !strings.HasPrefix(v3.Links["isp1"].Reason, "drain lifted; fw1 up") {
				t.Fatalf("isp1 %+v transitions %+v", v3.Links["isp1"], trs)
			}
		})
		t.Run("replaced", func(t *testing.T) {
			bob := Override{Link: "isp1", Action: Drain, Reason: "cable cut", By: "bob", Since: t0.Add(time.Hour)}
			v3, trs := Decide(v, bothUp, []Override{drain, bob}, pol, t0.Add(time.Hour))
			if trs != nil || v3.Seq != v.Seq+1 || v3.Links["isp1"].Reason != "drained by bob: cable cut" {
				t.Fatalf("isp1 %+v transitions %+v", v3.Links["isp1"], trs)
			}
		})
	})

	t.Run("force-up", func(t *testing.T) {
		obs := views("fw1 isp1=up isp2=down", "fw2 isp1=up isp2=down")
		v, _ := Decide(Verdict{}, obs, nil, pol, t0)
		force := Override{Link: "isp2", Action: ForceUp, By: "carol", Since: t0}
		v2, trs := Decide(v, obs, []Override{force}, pol, t0.Add(time.Minute))
		lv := v2.Links["isp2"]
		if lv.State != Up || lv.Observed != Down || lv.Override != ForceUp || lv.Reason != "forced up by carol" {
			t.Fatalf("isp2 %+v", lv)
		}
		if len(trs) != 1 || trs[0].To != Up || !slices.Equal(v2.Active, []string{"isp1", "isp2"}) {
			t.Fatalf("active %v transitions %+v", v2.Active, trs)
		}
		// Nodes that see a forced-up link down are impaired, as for any Up link.
		if want := []Impairment{{"fw1", "isp2"}, {"fw2", "isp2"}}; !slices.Equal(v2.Impaired, want) {
			t.Errorf("impaired %v", v2.Impaired)
		}
		// No expiry: nothing pending.
		if _, ok := NextEvent(v2, []Override{force}, pol, t0.Add(time.Minute)); ok {
			t.Error("NextEvent for an override without Until")
		}
	})

	t.Run("drain on a down link", func(t *testing.T) {
		obs := views("fw1 isp1=down isp2=up")
		v, _ := Decide(Verdict{}, obs, nil, pol, t0)
		v2, trs := Decide(v, obs, []Override{drain}, pol, t0.Add(time.Minute))
		// The verdict records the override although no state changed.
		if trs != nil || v2.Seq != v.Seq+1 || v2.Links["isp1"].Override != Drain || !v2.Links["isp1"].Since.Equal(t0) {
			t.Fatalf("isp1 %+v transitions %+v", v2.Links["isp1"], trs)
		}
	})

	t.Run("ignored", func(t *testing.T) {
		ignored := []Override{
			{Link: "isp9", Action: Drain, By: "alice"},                              // not a configured link
			{Link: "isp1", Action: Drain, By: "alice", Until: t0},                   // expired
			{Link: "isp1", Action: "reboot", By: "mallory"},                         // unknown action
			{Link: "isp2", Action: Drain, By: "alice", Until: t0.Add(-time.Second)}, // expired
		}
		v, trs := Decide(base, bothUp, ignored, pol, t0.Add(time.Minute))
		if trs != nil || v.Seq != base.Seq {
			t.Fatalf("ignored overrides changed the verdict: %+v %+v", v, trs)
		}
		if _, ok := v.Links["isp9"]; ok {
			t.Error("verdict for an unknown link")
		}
		if _, ok := NextEvent(v, ignored, pol, t0.Add(time.Minute)); ok {
			t.Error("NextEvent from ignored overrides")
		}
	})

	t.Run("precedence does not depend on order", func(t *testing.T) {
		ovs := []Override{
			{Link: "isp1", Action: ForceUp, By: "a", Since: t0},
			{Link: "isp1", Action: Drain, By: "b", Since: t0.Add(time.Second)}, // most recent wins
			{Link: "isp2", Action: ForceUp, By: "c", Since: t0},
			{Link: "isp2", Action: Drain, By: "d", Since: t0}, // same time: drain wins
		}
		for i := range ovs {
			rot := append(slices.Clone(ovs[i:]), ovs[:i]...)
			slices.Reverse(rot[:2])
			v, _ := Decide(base, bothUp, rot, pol, t0.Add(time.Minute))
			if v.Links["isp1"].Override != Drain || v.Links["isp2"].Override != Drain {
				t.Fatalf("order %v: %s", rot, states(v, pol))
			}
		}
	})
}

func TestNextEvent(t *testing.T) {
	pol := policy(Any, AllDownAll, "isp1", "isp2")
	obs := views("fw1 isp1=up isp2=up")
	ovs := []Override{
		{Link: "isp1", Action: Drain, By: "a", Until: t0.Add(2 * time.Hour)},
		{Link: "isp2", Action: ForceUp, By: "b", Until: t0.Add(time.Hour)},
	}
	v, _ := Decide(Verdict{}, obs, ovs, pol, t0)
	if next, ok := NextEvent(v, ovs, pol, t0); !ok || !next.Equal(t0.Add(time.Hour)) {
		t.Errorf("next %v %v, want the earliest expiry", next, ok)
	}
	// A verdict that does not yet reflect an override is due now.
	stale, _ := Decide(Verdict{}, obs, nil, pol, t0)
	if next, ok := NextEvent(stale, ovs, pol, t0.Add(time.Second)); !ok || !next.Equal(t0.Add(time.Second)) {
		t.Errorf("stale: next %v %v, want now", next, ok)
	}
	if next, ok := NextEvent(v, nil, pol, t0.Add(time.Second)); !ok || !next.Equal(t0.Add(time.Second)) {
		t.Errorf("lifted: next %v %v, want now", next, ok)
	}
	if _, ok := NextEvent(stale, nil, pol, t0); ok {
		t.Error("nothing pending, yet NextEvent reports something")
	}
	// A link the verdict does not know yet is due now.
	grown := pol
	grown.Links = append(slices.Clone(pol.Links), LinkPolicy{Name: "lte", Tier: 2})
	if next, ok := NextEvent(stale, nil, grown, t0); !ok || !next.Equal(t0) {
		t.Errorf("new link: next %v %v, want now", next, ok)
	}
}
