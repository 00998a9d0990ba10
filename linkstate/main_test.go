package linkstate

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)

// views builds Observations from specs like "fw1 isp1=up isp2=down"; a
// leading "-" marks a node that is not alive ("-fw3 isp1=up").
func views(specs ...string) Observations {
	obs := Observations{}
	for _, spec := range specs {
		f := strings.Fields(spec)
		name, alive := strings.CutPrefix(f[0], "-")
		nv := NodeView{Alive: !alive, Links: map[string]Observation{}}
		for _, kv := range f[1:] {
			link, st, _ := strings.Cut(kv, "=")
			var s State
			if err := s.UnmarshalText([]byte(st)); err != nil {
				panic(err)
			}
			nv.Links[link] = Observation{Link: link, State: s}
		}
		obs[name] = nv
	}
	return obs
}

func policy(mode DecideMode, allDown AllDownMode, links ...string) Policy {
	p := Policy{Decide: mode, AllDown: allDown}
	for _, l := range links {
		name, tier, ok := strings.Cut(l, ":")
		t := 1
		if ok {
			t = int(tier[0] - '0')
		}
		p.Links = append(p.Links, LinkPolicy{Name: name, Tier: t})
	}
	return p
}

// chain runs Decide over a sequence of observations, one minute apart, and
// returns the last verdict and transitions.
func chain(t *testing.T, pol Policy, steps ...Observations) (Verdict, []Transition) {
	t.Helper()
	var v Verdict
	var trs []Transition
	for i, obs := range steps {
		v, trs = Decide(v, obs, nil, pol, t0.Add(time.Duration(i)*time.Minute))
	}
	return v, trs
}

func states(v Verdict, pol Policy) string {
	var b []string
	for _, lp := range pol.Links {
		b = append(b, lp.Name+"="+v.Links[lp.Name].State.String())
	}
	return strings.Join(b, " ")
}
