package linkstate_test

import (
	"fmt"
	"time"

	"gwstated/linkstate"
)

func ExampleDecide() {
	pol := linkstate.Policy{
		Links:   []linkstate.LinkPolicy{{Name: "isp1", Tier: 1}, {Name: "isp2", Tier: 1}},
		Decide:  linkstate.Any,
		AllDown: linkstate.AllDownNone,
	}
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	see := func(isp1, isp2 linkstate.State) linkstate.NodeView {
		return linkstate.NodeView{Alive: true, Links: map[string]linkstate.Observation{
			"isp1": {Link: "isp1", State: isp1}, "isp2": {Link: "isp2", State: isp2},
		}}
	}
	show := func(v linkstate.Verdict, trs []linkstate.Transition) {
		fmt.Printf("seq %d active %v all_down %v\n", v.Seq, v.Active, v.AllDown)
		for _, tr := range trs {
			fmt.Printf("  %s %v→%v: %s\n", tr.Link, tr.From, tr.To, tr.Reason)
		}
	}

	// Before any data every link is used.
	v, trs := linkstate.Decide(linkstate.Verdict{}, linkstate.Observations{}, nil, pol, now)
	show(v, trs)

	// Both firewalls see both links up.
	obs := linkstate.Observations{"fw1": see(linkstate.Up, linkstate.Up), "fw2": see(linkstate.Up, linkstate.Up)}
	v, trs = linkstate.Decide(v, obs, nil, pol, now.Add(time.Second))
	show(v, trs)

	// isp1 fails for both; fw2 dies.
	obs = linkstate.Observations{"fw1": see(linkstate.Down, linkstate.Up), "fw2": see(linkstate.Up, linkstate.Up)}
	obs["fw2"] = linkstate.NodeView{Alive: false, Links: obs["fw2"].Links}
	v, trs = linkstate.Decide(v, obs, nil, pol, now.Add(time.Minute))
	show(v, trs)

	// An operator drains isp2 for two hours.
	drain := []linkstate.Override{{Link: "isp2", Action: linkstate.Drain, By: "alice",
		Reason: "ISP maintenance", Since: now, Until: now.Add(2 * time.Hour)}}
	v, trs = linkstate.Decide(v, obs, drain, pol, now.Add(2*time.Minute))
	show(v, trs)
	next, _ := linkstate.NextEvent(v, drain, pol, now.Add(2*time.Minute))
	fmt.Println("decide again at", next.Format(time.RFC3339))

	// Output:
	// seq 1 active [isp1 isp2] all_down true
	// seq 2 active [isp1 isp2] all_down false
	//   isp1 unknown→up: fw1 up, fw2 up: any: 2 of 2 views up; tier 1 in use: isp1, isp2
	//   isp2 unknown→up: fw1 up, fw2 up: any: 2 of 2 views up; tier 1 in use: isp1, isp2
	// seq 3 active [isp2] all_down false
	//   isp1 up→down: fw1 down, fw2 not alive: any: no alive node sees it up; tier 1 in use: isp2
	// seq 4 active [] all_down true
	//   isp2 up→down: drained by alice: ISP maintenance until 2026-11-24T05:00:00Z; no link up; all_down=none: no link carries traffic
	// decide again at 2026-11-24T05:00:00Z
}
