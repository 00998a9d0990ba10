package linkstate

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The ifstated recipe (docs/DESIGN.md, "Weaknesses of the ifstated recipe"): one
// box pings both gateways and moves between four states. all_down=none is
// the recipe's alldown (empty anchors).
func TestIfstatedRecipeStates(t *testing.T) {
	pol := policy(Any, AllDownNone, "isp1", "isp2")
	type recipeState struct {
		obs     string
		active  []string
		allDown bool
	}
	recipe := map[string]recipeState{
		"allworking": {"isp1=up isp2=up", []string{"isp1", "isp2"}, false},
		"noisp1":     {"isp1=down isp2=up", []string{"isp2"}, false},
		"noisp2":     {"isp1=up isp2=down", []string{"isp1"}, false},
		"alldown":    {"isp1=down isp2=down", []string{}, true},
	}
	names := []string{"allworking", "noisp1", "noisp2", "alldown"}
	for _, from := range names {
		for _, to := range names {
			if from == to {
				continue
			}
			t.Run(from+"→"+to, func(t *testing.T) {
				a, b := recipe[from], recipe[to]
				v, _ := Decide(Verdict{}, views("fw1 "+a.obs), nil, pol, t0)
				if !slices.Equal(v.Active, a.active) || v.AllDown != a.allDown {
					t.Fatalf("%s: active %v alldown %v", from, v.Active, v.AllDown)
				}
				now := t0.Add(10 * time.Second)
				v2, trs := Decide(v, views("fw1 "+b.obs), nil, pol, now)
				if !slices.Equal(v2.Active, b.active) || v2.AllDown != b.allDown || v2.Seq != v.Seq+1 {
					t.Fatalf("%s: active %v alldown %v seq %d", to, v2.Active, v2.AllDown, v2.Seq)
				}
				// One transition per link that changed, in policy order.
				var want []Transition
				for _, lp := range pol.Links {
					if f, g := v.Links[lp.Name].State, v2.Links[lp.Name].State; f != g {
						want = append(want, Transition{Link: lp.Name, From: f, To: g})
					}
				}
				if len(trs) != len(want) || len(trs) == 0 {
					t.Fatalf("transitions %+v, want %+v", trs, want)
				}
				for i, tr := range trs {
					if tr.Link != want[i].Link || tr.From != want[i].From || tr.To != want[i].To || !tr.Time.Equal(now) ||
						len(tr.Evidence) != 1 || tr.Evidence[0].Node != "fw1" || tr.Reason == "" {
						t.Errorf("transition %d: %+v, want %+v", i, tr, want[i])
					}
					if tr.To != v2.Links[tr.Link].State || tr.Evidence[0].State != tr.To {
						t.Errorf("transition %+v disagrees with verdict/evidence", tr)
					}
				}
				// The active set changes with every recipe transition: the last transition says how.
				if last := trs[len(trs)-1].Reason; !strings.HasSuffix(last, "; "+v2.ActiveReason) {
					t.Errorf("reason %q does not end with %q", last, v2.ActiveReason)
				}
				// Staying put is no change.
				if v3, trs := Decide(v2, views("fw1 "+b.obs), nil, pol, now.Add(10*time.Second)); trs != nil || v3.Seq != v2.Seq {
					t.Errorf("re-deciding %s: seq %d→%d transitions %v", to, v2.Seq, v3.Seq, trs)
				}
			})
		}
	}
}
