package linkstate

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDecideModes(t *testing.T) {
	tests := []struct {
		name   string
		mode   DecideMode
		prev   State // previous Observed and State of isp1; Unknown: no previous verdict
		obs    Observations
		want   State
		reason string // substring of the link's reason
	}{
		{"any one up", Any, Unknown, views("fw1 isp1=up", "fw2 isp1=down"), Up, "any: 1 of 2 views up"},
		{"any all down", Any, Up, views("fw1 isp1=down", "fw2 isp1=down"), Down, "any: no alive node sees it up"},
		{"any dead node up ignored", Any, Up, views("fw1 isp1=down", "-fw2 isp1=up"), Down, "fw2 not alive"},
		{"any missing view is unknown", Any, Up, views("fw1 isp1=down", "fw2"), Down, "fw2 has no view"},
		{"any unknown view is unknown", Any, Up, views("fw1 isp1=down", "fw2 isp1=unknown"), Down, "fw2 unknown"},
		{"any all unknown keeps up", Any, Down, views("fw1", "-fw2 isp1=up"), Down, ""},
		{"any no data", Any, Unknown, views("fw1", "-fw2 isp1=up"), Unknown, "no data yet"},
		{"any no nodes", Any, Unknown, Observations{}, Unknown, "no data yet"},
		{"majority 2 of 3", Majority, Down, views("fw1 isp1=up", "fw2 isp1=up", "fw3 isp1=down"), Up, "majority: 2 of 3 views up"},
		{"majority 2 of 3 down", Majority, Up, views("fw1 isp1=up", "fw2 isp1=down", "fw3 isp1=down"), Down, "majority: 2 of 3 views down"},
		{"majority tie keeps down", Majority, Down, views("fw1 isp1=up", "fw2 isp1=down"), Down, ""},
		{"majority tie keeps up", Majority, Up, views("fw1 isp1=up", "fw2 isp1=down"), Up, ""},
		{"majority tie without previous is up", Majority, Unknown, views("fw1 isp1=up", "fw2 isp1=down"), Up, "tie 1-1 and no earlier verdict: up (fail-open)"},
		{"majority unknown views not counted", Majority, Down, views("fw1 isp1=up", "fw2", "fw3 isp1=unknown"), Up, "1 of 1 views up"},
		{"majority dead ignored", Majority, Up, views("fw1 isp1=down", "-fw2 isp1=up", "-fw3 isp1=up"), Down, "1 of 1 views down"},
		{"majority all unknown keeps", Majority, Up, views("fw1", "fw2"), Up, ""},
		{"all one down", All, Up, views("fw1 isp1=up", "fw2 isp1=up", "fw3 isp1=down"), Down, "all: 1 of 3 views down"},
		{"all every view up", All, Down, views("fw1 isp1=up", "fw2 isp1=up"), Up, "all: no alive node sees it down"},
		{"all unknown not down", All, Down, views("fw1 isp1=up", "fw2"), Up, ""},
		{"all dead down ignored", All, Down, views("fw1 isp1=up", "-fw2 isp1=down"), Up, ""},
		{"all no data", All, Unknown, views("fw1", "fw2"), Unknown, "no data yet"},
		{"empty mode is any", "", Down, views("fw1 isp1=up", "fw2 isp1=down"), Up, "any: 1 of 2 views up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol := policy(tc.mode, AllDownAll, "isp1")
			var prev Verdict
			if tc.prev != Unknown {
				prev = Verdict{Seq: 7, Links: map[string]LinkVerdict{
					"isp1": {State: tc.prev, Observed: tc.prev, Since: t0.Add(-time.Hour), Reason: "before"},
				}}
			}
			v, trs := Decide(prev, tc.obs, nil, pol, t0)
			lv := v.Links["isp1"]
			if lv.State != tc.want || lv.Observed != tc.want {
				t.Fatalf("state %v observed %v, want %v (reason %q)", lv.State, lv.Observed, tc.want, lv.Reason)
			}
			if tc.reason != "" && !strings.Contains(lv.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", lv.Reason, tc.reason)
			}
			if changed := tc.want != tc.prev; changed != (len(trs) == 1) {
				t.Errorf("transitions %+v, want one iff the state changed", trs)
			}
			if tc.want == tc.prev && tc.prev != Unknown && (lv.Reason != "before" || !lv.Since.Equal(t0.Add(-time.Hour))) {
				t.Errorf("unchanged state rewrote reason/since: %q %v", lv.Reason, lv.Since)
			}
		})
	}
}

func TestReasonAndEvidence(t *testing.T) {
	pol := policy(Any, AllDownAll, "isp1", "isp2")
	up := views("fw1 isp1=up isp2=up", "fw2 isp1=up isp2=up", "-fw3")
	v, _ := Decide(Verdict{}, up, nil, pol, t0)

	down := views("fw1 isp1=down isp2=up", "fw2 isp1=down isp2=up", "-fw3 isp1=up")
	lost := []TargetObs{
		{Addr: netip.MustParseAddr("198.51.100.100"), State: Down, Loss: 100},
		{Addr: netip.MustParseAddr("9.9.9.9"), State: Down, Loss: 100},
		{Addr: netip.MustParseAddr("1.1.1.1"), State: Down, Loss: 60},
	}
	o := down["fw1"].Links["isp1"]
	o.Targets, o.Loss, o.RTT, o.LastOK = lost, 100, 12*time.Millisecond, t0.Add(-5*time.Second)
	down["fw1"].Links["isp1"] = o
	o = down["fw2"].Links["isp1"]
	o.Loss = 45
	down["fw2"].Links["isp1"] = o

	now := t0.Add(time.Minute)
	v2, trs := Decide(v, down, nil, pol, now)
	if len(trs) != 1 {
		t.Fatalf("transitions %+v, want one", trs)
	}
	tr := trs[0]
	want := "fw1 down (3/3 targets lost), fw2 down (loss 45%), fw3 not alive: any: no alive node sees it up"
	// The active set changed too, and the transition says how.
	if tr.Link != "isp1" || tr.From != Up || tr.To != Down || tr.Reason != want+"; tier 1 in use: isp2" || !tr.Time.Equal(now) {
		t.Errorf("transition %+v\nwant reason %q", tr, want)
	}
	if v2.Links["isp1"].Reason != want || !v2.Links["isp1"].Since.Equal(now) {
		t.Errorf("link verdict %+v", v2.Links["isp1"])
	}
	var names []string
	for _, e := range tr.Evidence {
		names = append(names, e.Node)
	}
	if !slices.Equal(names, []string{"fw1", "fw2", "fw3"}) {
		t.Fatalf("evidence nodes %v, want every known node sorted", names)
	}
	e := tr.Evidence[0]
	if !e.Alive || e.State != Down || e.Loss != 100 || e.RTT != 12*time.Millisecond || !e.LastOK.Equal(t0.Add(-5*time.Second)) || len(e.Targets) != 3 {
		t.Errorf("fw1 evidence %+v", e)
	}
	if e := tr.Evidence[2]; e.Alive || e.State != Up {
		t.Errorf("dead fw3's evidence %+v, want its (ignored) up view, alive=false", e)
	}
	// The evidence is a copy: the caller may reuse its observation buffers.
	lost[0].State = Up
	if tr.Evidence[0].Targets[0].State != Down {
		t.Error("evidence aliases the caller's target slice")
	}
	if v2.Seq != v.Seq+1 || !v2.Time.Equal(now) {
		t.Errorf("seq %d time %v, want %d %v", v2.Seq, v2.Time, v.Seq+1, now)
	}
}

func TestImpaired(t *testing.T) {
	pol := policy(Any, AllDownAll, "isp2", "isp1")
	obs := views("fw2 isp1=down isp2=down", "fw1 isp1=up isp2=down", "fw3 isp1=up isp2=up", "-fw0 isp1=down isp2=down")
	v, _ := Decide(Verdict{}, obs, nil, pol, t0)
	want := []Impairment{{"fw1", "isp2"}, {"fw2", "isp1"}, {"fw2", "isp2"}}
	if !slices.Equal(v.Impaired, want) {
		t.Errorf("impaired %v, want %v", v.Impaired, want)
	}
	// A link down by verdict impairs nobody.
	v, _ = Decide(v, views("fw1 isp1=down isp2=down", "fw2 isp1=down isp2=up"), nil, pol, t0.Add(time.Minute))
	if want := []Impairment{{"fw1", "isp2"}}; !slices.Equal(v.Impaired, want) {
		t.Errorf("impaired %v, want %v", v.Impaired, want)
	}
	// Impairment alone is a change of verdict (CARP demotion hangs on it).
	v2, trs := Decide(v, views("fw1 isp1=down isp2=up", "fw2 isp1=down isp2=up"), nil, pol, t0.Add(2*time.Minute))
	if len(trs) != 0 || v2.Seq != v.Seq+1 || v2.Impaired != nil {
		t.Errorf("seq %d→%d, impaired %v, transitions %v", v.Seq, v2.Seq, v2.Impaired, trs)
	}
}

func TestTiers(t *testing.T) {
	// Policy order is not tier order: the backup is listed first.
	pol := policy(Any, AllDownNone, "lte:2", "isp1:1", "isp2:1")
	tests := []struct {
		obs     string
		active  []string
		allDown bool
		reason  string
	}{
		{"lte=up isp1=up isp2=up", []string{"isp1", "isp2"}, false, "tier 1 in use: isp1, isp2"},
		{"lte=up isp1=down isp2=up", []string{"isp2"}, false, "tier 1 in use: isp2"},
		{"lte=down isp1=up isp2=down", []string{"isp1"}, false, "tier 1 in use: isp1"},
		{"lte=up isp1=down isp2=down", []string{"lte"}, false, "tier 2 takes over: no link of a lower tier is up; in use: lte"},
		{"lte=down isp1=down isp2=down", []string{}, true, "no link up; all_down=none"},
	}
	for _, tc := range tests {
		t.Run(tc.obs, func(t *testing.T) {
			v, _ := Decide(Verdict{}, views("fw1 "+tc.obs), nil, pol, t0)
			if !slices.Equal(v.Active, tc.active) || v.AllDown != tc.allDown || !strings.HasPrefix(v.ActiveReason, tc.reason) {
				t.Errorf("active %v alldown %v (%q), want %v %v (%q)", v.Active, v.AllDown, v.ActiveReason, tc.active, tc.allDown, tc.reason)
			}
		})
	}

	// Tier 2 takes over only when tier 1 is wholly down, and the transition
	// that makes it take over says so.
	v, _ := Decide(Verdict{}, views("fw1 lte=up isp1=down isp2=up"), nil, pol, t0)
	v, trs := Decide(v, views("fw1 lte=up isp1=down isp2=down"), nil, pol, t0.Add(time.Minute))
	if len(trs) != 1 || trs[0].Link != "isp2" || !strings.HasSuffix(trs[0].Reason, "; tier 2 takes over: no link of a lower tier is up; in use: lte") {
		t.Fatalf("transitions %+v", trs)
	}
	v, trs = Decide(v, views("fw1 lte=up isp1=up isp2=down"), nil, pol, t0.Add(2*time.Minute))
	if len(trs) != 1 || !slices.Equal(v.Active, []string{"isp1"}) || !strings.HasSuffix(trs[0].Reason, "; tier 1 in use: isp1") {
		t.Fatalf("active %v transitions %+v", v.Active, trs)
	}
	// The backup going down while tier 1 carries changes no active set.
	_, trs = Decide(v, views("fw1 lte=down isp1=up isp2=down"), nil, pol, t0.Add(3*time.Minute))
	if len(trs) != 1 || strings.Contains(trs[0].Reason, "tier") {
		t.Fatalf("transitions %+v", trs)
	}
}

func TestAllDown(t *testing.T) {
	down := views("fw1 isp1=down isp2=down")
	lastUp := views("fw1 isp1=down isp2=up")
	tests := []struct {
		mode   AllDownMode
		before Observations // decided first; nil: start from the zero verdict
		active []string
		reason string
	}{
		{AllDownAll, nil, []string{"isp1", "isp2"}, "no link up; all_down=all: using every link (fail-open)"},
		{"", nil, []string{"isp1", "isp2"}, "no link up; all_down=all: using every link (fail-open)"},
		{AllDownNone, nil, []string{}, "no link up; all_down=none: no link carries traffic"},
		{AllDownNone, lastUp, []string{}, "no link up; all_down=none: no link carries traffic"},
		{AllDownKeep, lastUp, []string{"isp2"}, "no link up; all_down=keep: keeping isp2, the links in use before"},
		{AllDownKeep, nil, []string{"isp1", "isp2"}, "no link up; all_down=keep but no earlier verdict had a link in use: using every link (fail-open)"},
	}
	for _, tc := range tests {
		name := string(tc.mode)
		if tc.before != nil {
			name += " after isp2 only"
		}
		t.Run(name, func(t *testing.T) {
			pol := policy(Any, tc.mode, "isp1", "isp2")
			var v Verdict
			if tc.before != nil {
				v, _ = Decide(v, tc.before, nil, pol, t0)
			}
			v, _ = Decide(v, down, nil, pol, t0.Add(time.Minute))
			if !v.AllDown || !slices.Equal(v.Active, tc.active) || v.ActiveReason != tc.reason {
				t.Fatalf("alldown %v active %v (%q), want %v (%q)", v.AllDown, v.Active, v.ActiveReason, tc.active, tc.reason)
			}
			// keep stays kept on the next decisions.
			v2, trs := Decide(v, down, nil, pol, t0.Add(2*time.Minute))
			if v2.Seq != v.Seq || trs != nil {
				t.Errorf("deciding again changed seq %d→%d, transitions %v", v.Seq, v2.Seq, trs)
			}
		})
	}
}

// The first verdict ever, with no data, is not "all down": every link
// carries traffic whatever all_down says.
func TestFirstVerdictWithoutData(t *testing.T) {
	for _, mode := range []AllDownMode{AllDownAll, AllDownNone, AllDownKeep} {
		pol := policy(Any, mode, "isp1", "isp2:2")
		v, trs := Decide(Verdict{}, views("fw1", "-fw2 isp1=down"), nil, pol, t0)
		if v.Seq != 1 || !v.Time.Equal(t0) || trs != nil {
			t.Errorf("%s: seq %d time %v transitions %v", mode, v.Seq, v.Time, trs)
		}
		if !v.AllDown || !slices.Equal(v.Active, []string{"isp1", "isp2"}) || v.ActiveReason != "no data yet: using every link (fail-open)" {
			t.Errorf("%s: alldown %v active %v %q", mode, v.AllDown, v.Active, v.ActiveReason)
		}
		for _, lp := range pol.Links {
			lv := v.Links[lp.Name]
			if lv.State != Unknown || v.Up(lp.Name) || !v.IsActive(lp.Name) || !lv.Since.Equal(t0) {
				t.Errorf("%s: %s: %+v", mode, lp.Name, lv)
			}
		}
		// First data: transitions Unknown→X for each link.
		v2, trs := Decide(v, views("fw1 isp1=up isp2=down"), nil, pol, t0.Add(time.Second))
		if len(trs) != 2 || trs[0].From != Unknown || trs[0].To != Up || trs[1].To != Down || !slices.Equal(v2.Active, []string{"isp1"}) {
			t.Errorf("%s: first data: active %v transitions %+v", mode, v2.Active, trs)
		}
	}
}

// gwctl render decides with one synthetic alive node that sees the listed
// links up and the rest down.
func renderVerdict(pol Policy, up ...string) Verdict {
	nv := NodeView{Alive: true, Links: map[string]Observation{}}
	for _, lp := range pol.Links {
		st := Down
		if slices.Contains(up, lp.Name) {
			st = Up
		}
		nv.Links[lp.Name] = Observation{Link: lp.Name, State: st}
	}
	v, _ := Decide(Verdict{}, Observations{"gwctl": nv}, nil, pol, time.Time{})
	return v
}

func TestRenderSyntheticNode(t *testing.T) {
	pol := policy(Majority, AllDownNone, "isp1", "isp2", "lte:2")
	pol.Damping = Damping{Penalty: 1000, HalfLife: time.Minute, Suppress: 1500, Reuse: 500}
	tests := []struct {
		up      []string
		active  []string
		allDown bool
	}{
		{[]string{"isp1", "isp2", "lte"}, []string{"isp1", "isp2"}, false},
		{[]string{"isp2"}, []string{"isp2"}, false},
		{[]string{"isp1", "lte"}, []string{"isp1"}, false},
		{[]string{"lte"}, []string{"lte"}, false},
		{nil, []string{}, true}, // --up "": the recipe's alldown, not the no-data fail-open
	}
	for _, tc := range tests {
		v := renderVerdict(pol, tc.up...)
		if !slices.Equal(v.Active, tc.active) || v.AllDown != tc.allDown {
			t.Errorf("--up %v: active %v alldown %v, want %v %v", tc.up, v.Active, v.AllDown, tc.active, tc.allDown)
		}
		for _, lp := range pol.Links {
			if v.Up(lp.Name) != slices.Contains(tc.up, lp.Name) {
				t.Errorf("--up %v: %s is %v", tc.up, lp.Name, v.Links[lp.Name].State)
			}
		}
	}
	pol.AllDown = AllDownAll
	if v := renderVerdict(pol); !v.AllDown || len(v.Active) != 3 {
		t.Errorf("--up \"\" with all_down=all: active %v", v.Active)
	}
}

func TestDecideTwiceNoChange(t *testing.T) {
	pol := policy(Majority, AllDownKeep, "isp1", "isp2", "lte:2")
	obs := views("fw1 isp1=up isp2=down lte=up", "fw2 isp1=down isp2=down lte=up", "-fw3 isp1=up")
	ovs := []Override{{Link: "lte", Action: Drain, By: "bob", Until: t0.Add(time.Hour)}}
	v1, trs := Decide(Verdict{Seq: 41}, obs, ovs, pol, t0)
	if v1.Seq != 42 || len(trs) == 0 {
		t.Fatalf("first: seq %d transitions %v", v1.Seq, trs)
	}
	v2, trs := Decide(v1, obs, ovs, pol, t0.Add(time.Minute))
	if trs != nil || v2.Seq != v1.Seq || !v2.Time.Equal(v1.Time) {
		t.Fatalf("second: seq %d time %v transitions %v", v2.Seq, v2.Time, trs)
	}
	// The verdict survives a JSON round trip (etcd, state file) unchanged.
	b, err := json.Marshal(v1)
	if err != nil {
		t.Fatal(err)
	}
	var back Verdict
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Equal(v1) {
		t.Fatalf("JSON round trip not Equal:\n%s", b)
	}
	v3, trs := Decide(back, obs, ovs, pol, t0.Add(2*time.Minute))
	if trs != nil || v3.Seq != v1.Seq {
		t.Fatalf("after JSON: seq %d transitions %v", v3.Seq, trs)
	}
}

func TestRemovedLink(t *testing.T) {
	pol := policy(Any, AllDownAll, "isp1", "isp2")
	v, _ := Decide(Verdict{}, views("fw1 isp1=up isp2=up"), nil, pol, t0)
	pol.Links = pol.Links[:1]
	v2, trs := Decide(v, views("fw1 isp1=up isp2=up"), nil, pol, t0.Add(time.Minute))
	if _, ok := v2.Links["isp2"]; ok || v2.Seq != v.Seq+1 || !slices.Equal(v2.Active, []string{"isp1"}) {
		t.Fatalf("verdict %+v", v2)
	}
	if len(trs) != 1 || trs[0].Link != "isp2" || trs[0].To != Unknown || !strings.HasPrefix(trs[0].Reason, "no longer in the configuration") {
		t.Fatalf("transitions %+v", trs)
	}
}

func TestVerdictEqual(t *testing.T) {
	pol := policy(Any, AllDownAll, "isp1", "isp2")
	pol.Damping = Damping{Penalty: 1000, HalfLife: time.Minute, Suppress: 1500, Reuse: 500}
	v, _ := chain(t, pol, views("fw1 isp1=up isp2=down", "fw2 isp1=down isp2=down"))
	if !v.Equal(v) {
		t.Fatal("not equal to itself")
	}
	o := v
	o.Seq, o.Time = 99, t0.Add(time.Hour)
	if !v.Equal(o) {
		t.Error("Seq/Time should not matter")
	}
	// The same instant in another location is the same.
	o.Links = map[string]LinkVerdict{}
	for k, lv := range v.Links {
		lv.Since = lv.Since.In(time.FixedZone("X", 3600))
		o.Links[k] = lv
	}
	if !v.Equal(o) {
		t.Error("time location should not matter")
	}
	mutations := map[string]func(*Verdict){
		"active":        func(x *Verdict) { x.Active = []string{"isp2"} },
		"alldown":       func(x *Verdict) { x.AllDown = !x.AllDown },
		"impaired":      func(x *Verdict) { x.Impaired = nil },
		"active reason": func(x *Verdict) { x.ActiveReason += "!" },
		"link missing":  func(x *Verdict) { delete(x.Links, "isp2") },
		"link renamed": func(x *Verdict) {
			x.Links["isp3"] = x.Links["isp2"]
			delete(x.Links, "isp2")
		},
	}
	lvMutations := map[string]func(*LinkVerdict){
		"state":      func(l *LinkVerdict) { l.State = Down },
		"observed":   func(l *LinkVerdict) { l.Observed = Unknown },
		"since":      func(l *LinkVerdict) { l.Since = l.Since.Add(1) },
		"reason":     func(l *LinkVerdict) { l.Reason = "x" },
		"penalty":    func(l *LinkVerdict) { l.Penalty = 1 },
		"penalty at": func(l *LinkVerdict) { l.PenaltyAt = t0 },
		"suppressed": func(l *LinkVerdict) { l.Suppressed = true },
		"override":   func(l *LinkVerdict) { l.Override = Drain },
	}
	for name, f := range lvMutations {
		mutations["link "+name] = func(x *Verdict) {
			lv := x.Links["isp1"]
			f(&lv)
			x.Links["isp1"] = lv
		}
	}
	for name, mutate := range mutations {
		c := v
		c.Links = map[string]LinkVerdict{}
		for k, lv := range v.Links {
			c.Links[k] = lv
		}
		mutate(&c)
		if v.Equal(c) || c.Equal(v) {
			t.Errorf("%s: still Equal", name)
		}
	}
	if !v.Up("isp1") || v.Up("isp2") || v.Up("nope") || !v.IsActive("isp1") || v.IsActive("isp2") {
		t.Errorf("Up/IsActive wrong on %s, active %v", states(v, pol), v.Active)
	}
}
