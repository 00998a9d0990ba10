package linkstate

import (
	"fmt"
	"testing"
	"time"
)

func benchInput(nodes, links int) (Policy, Observations, Observations) {
	pol := Policy{Decide: Any, AllDown: AllDownAll, Damping: Damping{Penalty: 1000, HalfLife: 15 * time.Minute, Suppress: 3000, Reuse: 750}}
	for l := range links {
		pol.Links = append(pol.Links, LinkPolicy{Name: fmt.Sprintf("isp%d", l), Tier: 1 + l/(links/2+1)})
	}
	mk := func(firstUp bool) Observations {
		obs := Observations{}
		for n := range nodes {
			nv := NodeView{Alive: true, Links: map[string]Observation{}}
			for l, lp := range pol.Links {
				st := Up
				if l == 0 && !firstUp {
					st = Down
				}
				nv.Links[lp.Name] = Observation{Link: lp.Name, State: st, Loss: 1, RTT: time.Millisecond}
			}
			obs[fmt.Sprintf("fw%d", n)] = nv
		}
		return obs
	}
	return pol, mk(true), mk(false)
}

// BenchmarkDecide: steady is deciding on input that changed nothing (the
// common case: a heartbeat); change is one link going down or up.
func BenchmarkDecide(b *testing.B) {
	for _, nodes := range []int{2, 4, 16} {
		for _, links := range []int{2, 8, 64} {
			pol, up, down := benchInput(nodes, links)
			vUp, _ := Decide(Verdict{}, up, nil, pol, t0)
			vDown, _ := Decide(vUp, down, nil, pol, t0)
			b.Run(fmt.Sprintf("nodes=%d/links=%d/steady", nodes, links), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, trs := Decide(vUp, up, nil, pol, t0); trs != nil {
						b.Fatal("change")
					}
				}
			})
			b.Run(fmt.Sprintf("nodes=%d/links=%d/change", nodes, links), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					var trs []Transition
					if i%2 == 0 {
						_, trs = Decide(vUp, down, nil, pol, t0)
					} else {
						_, trs = Decide(vDown, up, nil, pol, t0)
					}
					if len(trs) != 1 {
						b.Fatal("no change")
					}
					i++
				}
			})
		}
	}
}
