package main

import (
	"fmt"
	"strings"
	"time"

	"gwstated/lab/traffic"
)

// Invariant 6 (real traffic): no datagram lost on a link that stayed up.
//
// Which losses count. The client's UDP flows each keep one socket (one
// conntrack entry) for the whole run; the traffic tool reports every gap
// (datagrams lost between two received ones, or at the head or tail) with
// the send times around it, and the segments of the flow (ISP and NAT
// source, so the carrying firewall) in sequence order. A gap counts
// against the invariant unless, at some time in [gap start − margin, gap
// end + margin]:
//
//   - the link the flow was on before the gap (after it, for a lost head)
//     had a fault: a cut seen by both firewalls, a loss burst, a drain, or
//     a one-sided cut of the firewall that carried the flow (a one-sided
//     cut of the other firewall does not excuse it); or
//   - the LAN gateway (VRRP address) moved or was held by no or both
//     firewalls (a handover: the new master has none of the old one's
//     conntrack state, so a flow may lose datagrams or move).
//
// Everything else (agent kill or stop, etcd member kill, sync split, HUP,
// verdict changes of the other link, rule rewrites) must lose nothing on
// such a flow; a flow that moved to another ISP or firewall without one of
// the excuses above also counts (the move lost its datagrams). margin
// covers the time between the harness recording a fault's start or end and
// the nft command taking effect, and the flight time of a datagram.

// Window is an interval during which something excused loss.
type Window struct {
	From, To time.Time
	Link     string // "" for a gateway window
	Firewall string // one-sided link fault: the firewall it hit; "" both
	What     string // for the report, e.g. "cut-both isp1"
	Cause    string // the excuse it gives: "link fault" when empty
}

func (w Window) overlaps(from, to time.Time) bool { return !w.To.Before(from) && !w.From.After(to) }

// LossCheck is the outcome of CheckLoss.
type LossCheck struct {
	Flows       int
	Sent        uint64
	Lost        uint64
	LostCounted uint64            // in gaps that count (violations)
	LostExcused map[string]uint64 // by reason: "link fault", "verdict change", "gateway handover"
	GapsExcused map[string]int
	LongestGap  time.Duration // longest counted gap
	Violations  []string
	FlowsClean  int // flows that lost nothing that counts
}

// CheckLoss applies invariant 6 to the flows of a traffic report. fwOf
// names the firewall that NAT'd a source ("" unknown).
func CheckLoss(flows []traffic.FlowReport, link, gateway []Window, fwOf func(string) string, margin time.Duration) LossCheck {
	c := LossCheck{Flows: len(flows), LostExcused: map[string]uint64{}, GapsExcused: map[string]int{}}
	for _, f := range flows {
		var counted []string
		var flowLost uint64
		c.Sent += f.Sent
		c.Lost += f.Lost
		if len(f.Segments) == 0 {
			if f.Sent > 0 {
				c.Violations = append(c.Violations, fmt.Sprintf("flow %d: no echo at all (%d sent)", f.Flow, f.Sent))
				c.LostCounted += f.Lost
			}
			continue
		}
		for _, g := range f.Gaps {
			before, after := around(f.Segments, g)
			on := before
			if on == nil {
				on = after
			}
			fw := fwOf(on.Source)
			from, to := g.From.Add(-margin), g.To.Add(margin)
			if why := excuse(link, gateway, on.ISP, fw, from, to); why != "" {
				c.LostExcused[why] += g.Lost
				c.GapsExcused[why]++
				continue
			}
			c.LostCounted += g.Lost
			flowLost += g.Lost
			c.LongestGap = max(c.LongestGap, g.Duration)
			v := fmt.Sprintf("%d on %s via %s sent %s–%s (%v)", g.Lost, on.ISP, orUnknown(fw),
				g.From.Format("15:04:05.000"), g.To.Format("15:04:05.000"), g.Duration.Round(time.Millisecond))
			switch {
			case g.Open:
				v += ", never resumed"
			case before != nil && after != nil && (before.ISP != after.ISP || before.Source != after.Source):
				v += fmt.Sprintf(", then moved to %s via %s", after.ISP, orUnknown(fwOf(after.Source)))
			}
			counted = append(counted, v)
		}
		if len(counted) == 0 {
			c.FlowsClean++
			continue
		}
		v := fmt.Sprintf("flow %d lost %d datagrams on a link that stayed up, in %d gaps: %s", f.Flow, flowLost, len(counted), strings.Join(counted[:min(3, len(counted))], "; "))
		if len(counted) > 3 {
			v += fmt.Sprintf("; and %d more gaps", len(counted)-3)
		}
		c.Violations = append(c.Violations, v)
	}
	return c
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown firewall"
	}
	return s
}

// around returns the segments that hold the datagrams received just
// before and just after gap g (nil at the head or the tail): a segment is
// a run of one ISP and NAT source, so a gap inside it has the same
// segment on both sides.
func around(segs []traffic.Segment, g traffic.Gap) (before, after *traffic.Segment) {
	head := len(segs) > 0 && g.From.Before(segs[0].From)
	for i := range segs {
		s := &segs[i]
		if !head && !s.From.After(g.From) && !g.From.After(s.To) {
			before = s
		}
		if after == nil && !g.Open && !s.From.After(g.To) && !g.To.After(s.To) {
			after = s
		}
	}
	return before, after
}

// excuse returns why loss on isp via fw in [from, to] does not count, or "".
func excuse(link, gateway []Window, isp, fw string, from, to time.Time) string {
	for _, w := range link {
		if w.Link == isp && (w.Firewall == "" || w.Firewall == fw) && w.overlaps(from, to) {
			if w.Cause != "" {
				return w.Cause
			}
			return "link fault"
		}
	}
	for _, w := range gateway {
		if w.overlaps(from, to) {
			return "gateway handover"
		}
	}
	return ""
}
