package main

import (
	"strings"
	"testing"
	"time"

	"gwstated/cluster"
	"gwstated/lab/traffic"
	"gwstated/linkstate"
)

var t0 = time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// sources: fw1's and fw2's NAT address on isp1 and isp2.
var fwOfTest = func(src string) string {
	switch {
	case strings.HasPrefix(src, "a1"):
		return "fw1"
	case strings.HasPrefix(src, "a2"):
		return "fw2"
	}
	return ""
}

// flow builds a flow report: segments (isp, source, from, to in seconds)
// and one gap between the first two segments (or at the tail when there is
// one segment and open is set).
func flow(id uint32, lost uint64, open bool, segs ...traffic.Segment) traffic.FlowReport {
	f := traffic.FlowReport{Flow: id, Sent: 1000, Lost: lost, Segments: segs}
	switch {
	case open:
		f.Gaps = []traffic.Gap{{From: segs[0].To, To: segs[0].To.Add(3 * time.Second), Duration: 3 * time.Second, Lost: lost, Open: true}}
	case len(segs) > 1 && lost > 0:
		f.Gaps = []traffic.Gap{{From: segs[0].To, To: segs[1].From, Duration: segs[1].From.Sub(segs[0].To), Lost: lost}}
	}
	return f
}

func seg(isp, src string, from, to float64) traffic.Segment {
	return traffic.Segment{ISP: isp, Source: src, From: at(from), To: at(to)}
}

func TestCheckLoss(t *testing.T) {
	link := []Window{
		{From: at(10), To: at(20), Link: "isp1", What: "cut-both isp1"},
		{From: at(30), To: at(40), Link: "isp2", Firewall: "fw2", What: "cut-one fw2 isp2"},
		{From: at(60), To: at(65), Link: "isp1", What: "verdict", Cause: "verdict change"},
	}
	gateway := []Window{{From: at(50), To: at(51), What: "gateway fw1→fw2"}}
	cases := []struct {
		name  string
		f     traffic.FlowReport
		count bool   // the loss counts against invariant 6
		why   string // excuse when it does not
	}{
		{"isp1 cut: excused", flow(1, 5, false, seg("isp1", "a1", 0, 12), seg("isp2", "a1", 13, 90)), false, "link fault"},
		{"isp2 during the isp1 cut: counts", flow(2, 3, false, seg("isp2", "a1", 0, 15), seg("isp2", "a1", 15.1, 90)), true, ""},
		{"isp2 via fw1 while fw2 alone lost isp2: counts", flow(3, 2, false, seg("isp2", "a1", 0, 35), seg("isp2", "a1", 35.2, 90)), true, ""},
		{"isp2 via fw2 while fw2 lost isp2: excused", flow(4, 2, false, seg("isp2", "a2", 0, 35), seg("isp2", "a2", 35.2, 90)), false, "link fault"},
		{"handover: excused", flow(5, 9, false, seg("isp2", "a1", 0, 50.2), seg("isp2", "a2", 50.5, 90)), false, "gateway handover"},
		{"just after the margin: counts", flow(6, 1, false, seg("isp2", "a1", 0, 52.2), seg("isp2", "a1", 52.3, 90)), true, ""},
		{"within the margin: excused", flow(7, 1, false, seg("isp2", "a1", 0, 51.8), seg("isp2", "a1", 51.9, 90)), false, "gateway handover"},
		{"verdict change of its link: excused", flow(8, 4, false, seg("isp1", "a1", 0, 61), seg("isp2", "a1", 61.5, 90)), false, "verdict change"},
		{"moved without a cause: counts", flow(9, 4, false, seg("isp1", "a1", 0, 70), seg("isp2", "a1", 70.5, 90)), true, ""},
		{"never resumed: counts", flow(10, 400, true, seg("isp2", "a1", 0, 80)), true, ""},
		{"no loss", flow(11, 0, false, seg("isp2", "a1", 0, 90)), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := CheckLoss([]traffic.FlowReport{tc.f}, link, gateway, fwOfTest, time.Second)
			switch {
			case tc.count && (len(c.Violations) != 1 || c.LostCounted != tc.f.Lost || c.FlowsClean != 0):
				t.Errorf("want one violation of %d datagrams, got %+v", tc.f.Lost, c)
			case !tc.count && (len(c.Violations) != 0 || c.FlowsClean != 1):
				t.Errorf("want no violation, got %v", c.Violations)
			case tc.why != "" && c.LostExcused[tc.why] != tc.f.Lost:
				t.Errorf("want %d excused by %s, got %v", tc.f.Lost, tc.why, c.LostExcused)
			}
		})
	}
	// Gaps inside one segment (a loss burst does not change the ISP or the
	// source): the segment is on both sides; no move.
	inside := traffic.FlowReport{Flow: 13, Sent: 1000, Lost: 3, Segments: []traffic.Segment{seg("isp1", "a1", 0, 90)},
		Gaps: []traffic.Gap{{From: at(12), To: at(12.1), Duration: 100 * time.Millisecond, Lost: 2}, {From: at(70), To: at(70.05), Duration: 50 * time.Millisecond, Lost: 1}}}
	c := CheckLoss([]traffic.FlowReport{inside}, link, gateway, fwOfTest, time.Second)
	if c.LostExcused["link fault"] != 2 || c.LostCounted != 1 || len(c.Violations) != 1 || strings.Contains(c.Violations[0], "moved") {
		t.Errorf("gaps inside a segment: excused %v, counted %d, %v", c.LostExcused, c.LostCounted, c.Violations)
	}
	// A head gap: the first segment is after it.
	head := traffic.FlowReport{Flow: 14, Sent: 1000, Lost: 5, Segments: []traffic.Segment{seg("isp1", "a1", 15, 90)},
		Gaps: []traffic.Gap{{From: at(14), To: at(15), Duration: time.Second, Lost: 5}}}
	if c := CheckLoss([]traffic.FlowReport{head}, link, gateway, fwOfTest, time.Second); c.LostExcused["link fault"] != 5 {
		t.Errorf("head gap during the isp1 cut: %+v", c)
	}
	// A flow with no echo at all is a violation.
	c = CheckLoss([]traffic.FlowReport{{Flow: 12, Sent: 50, Lost: 50}}, nil, nil, fwOfTest, time.Second)
	if len(c.Violations) != 1 || !strings.Contains(c.Violations[0], "no echo") {
		t.Errorf("silent flow: %v", c.Violations)
	}
	// Violations name the flow, its link and firewall, and a move.
	c = CheckLoss([]traffic.FlowReport{cases[8].f}, link, gateway, fwOfTest, time.Second)
	if len(c.Violations) != 1 || !strings.Contains(c.Violations[0], "flow 9 lost 4 datagrams") || !strings.Contains(c.Violations[0], "4 on isp1 via fw1") || !strings.Contains(c.Violations[0], "moved to isp2") {
		t.Errorf("violation text: %v", c.Violations)
	}
}

func TestVerdictWindows(t *testing.T) {
	recs := []cluster.AuditRecord{
		{Kind: cluster.KindTransition, Time: at(10), VerdictSeq: 4, Link: "isp1", From: linkstate.Up, To: linkstate.Down},
		{Kind: cluster.KindTransition, Time: at(40), VerdictSeq: 5, Link: "isp1", From: linkstate.Down, To: linkstate.Up},
		{Kind: cluster.KindOverride, Time: at(70), Link: "isp2"},
	}
	stopped := []Window{{From: at(35), To: at(55), Firewall: "fw1", What: "agent-stop fw1"}}
	ws := VerdictWindows(recs, stopped, 5*time.Second)
	if len(ws) != 3 {
		t.Fatalf("%d windows, want 3: %+v", len(ws), ws)
	}
	want := []struct {
		link     string
		from, to time.Time
	}{
		{"isp1", at(10), at(15)},
		{"isp1", at(40), at(60)}, // fw1 was stopped: it applies when it resumes
		{"isp2", at(70), at(75)},
	}
	for i, w := range want {
		if ws[i].Link != w.link || !ws[i].From.Equal(w.from) || !ws[i].To.Equal(w.to) || ws[i].Cause != "verdict change" {
			t.Errorf("window %d = %+v, want %s %v–%v", i, ws[i], w.link, w.from, w.to)
		}
	}
}
