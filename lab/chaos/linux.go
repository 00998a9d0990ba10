package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"gwstated/cluster"
	"gwstated/lab"
	"gwstated/lab/traffic"
)

// The real-traffic lab's part of a run: the traffic client on the LAN
// host for the whole schedule, the LAN gateway (VRRP) watched, and
// invariant 6 (lossinv.go) checked on the client's report at the end.

// Traffic of a chaos run: 16 UDP flows at 50 datagrams/s (a gap is
// resolved to 20 ms) and 5 new TCP connections/s; light enough for a
// shared 2-core host.
var chaosTraffic = lab.TrafficOptions{Flows: 16, Rate: 50, ConnRate: 5}

// lossMargin widens every gap before it is compared with the faults
// (lossinv.go); applyGrace is how long after a verdict transition the
// firewalls may still be applying it (both are alive: well under a
// second; a stopped, killed or cut-off firewall applies when its fault
// ends, which extends the window to that end).
const (
	lossMargin = time.Second
	applyGrace = 5 * time.Second
)

type trafficState struct {
	run *lab.TrafficRun

	mu      sync.Mutex
	link    []Window      // link faults and drains, real start/end times
	open    map[Fault]int // fault -> its index in link
	nodes   []Window      // agent stop/kill, sync faults: Firewall set ("" both)
	nodeIdx map[Fault]int
	gateway []Window // VRRP moves
	moves   int
}

func (r *runner) startTraffic() error {
	run, err := r.c.StartClient(r.trafficBin, chaosTraffic)
	if err != nil {
		return err
	}
	r.traffic = &trafficState{run: run, open: map[Fault]int{}, nodeIdx: map[Fault]int{}}
	return run.WaitStatus(r.ctx, 60*time.Second, "50 echoes per flow before the first fault", lab.FlowsReceivedSince(traffic.Status{}, 50, ""))
}

// noteBegin records when a fault that excuses loss, or delays an apply,
// started (before its command ran).
func (r *runner) noteBegin(f Fault) {
	t := r.traffic
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	switch f.Kind {
	case CutBoth, LossBurst, DrainUndrain:
		t.open[f] = len(t.link)
		t.link = append(t.link, Window{From: now, Link: f.Link, What: f.label()})
	case CutOne:
		t.open[f] = len(t.link)
		t.link = append(t.link, Window{From: now, Link: f.Link, Firewall: f.Node, What: f.label()})
	case AgentKill, AgentStop, SyncIsolate, SyncSplit:
		t.nodeIdx[f] = len(t.nodes)
		t.nodes = append(t.nodes, Window{From: now, Firewall: f.Node, What: f.label()})
	}
}

// noteEnd records when it ended (after its command ran).
func (r *runner) noteEnd(f Fault) {
	t := r.traffic
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.open[f]; ok {
		t.link[i].To = time.Now()
		delete(t.open, f)
	}
	if i, ok := t.nodeIdx[f]; ok {
		t.nodes[i].To = time.Now()
		delete(t.nodeIdx, f)
	}
}

func (f Fault) label() string {
	s := string(f.Kind)
	for _, x := range []string{f.Node, f.Link} {
		if x != "" {
			s += " " + x
		}
	}
	return s
}

// watchGateway polls which firewall holds the LAN gateway every 200 ms
// until ctx ends; every time it is not the firewall seen last (another
// one, none, or both), the interval from the last reading of the old
// master to the first reading of a single master again is a gateway window.
func (r *runner) watchGateway(ctx context.Context) {
	t := r.traffic
	stable, stableAt, path := "", time.Time{}, []string(nil)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	defer func() {
		if len(path) > 0 {
			t.mu.Lock()
			t.gateway = append(t.gateway, Window{From: stableAt, To: time.Now(), What: "gateway " + stable + "→" + strings.Join(path, "→") + " (at the end)"})
			t.mu.Unlock()
		}
	}()
	for {
		m, err := r.c.VRRPMaster(ctx)
		now := time.Now()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			m = "both"
		case m == "":
			m = "none"
		}
		single := m == lab.FW1 || m == lab.FW2
		switch {
		case single && stable == "":
			stable, stableAt = m, now
		case single && (m != stable || len(path) > 0):
			t.mu.Lock()
			t.gateway = append(t.gateway, Window{From: stableAt, To: now, What: "gateway " + strings.Join(append(append([]string{stable}, path...), m), "→")})
			t.moves++
			t.mu.Unlock()
			r.logf("gateway %s", strings.Join(append(append([]string{stable}, path...), m), " → "))
			stable, stableAt, path = m, now, nil
		case single:
			stableAt = now
		case len(path) == 0 || path[len(path)-1] != m:
			path = append(path, m)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// finishTraffic stops the client and checks invariant 6 on its report.
func (r *runner) finishTraffic() {
	t := r.traffic
	rep, err := t.run.Stop()
	if err != nil {
		r.violate("invariant 6: no traffic report: %v", err)
		return
	}
	h, err := r.c.History(context.WithoutCancel(r.ctx))
	if err != nil {
		r.violate("invariant 6: audit log unreadable: %v", err)
		return
	}
	recs := make([]cluster.AuditRecord, len(h))
	for i := range h {
		recs[i] = h[i].AuditRecord
	}
	t.mu.Lock()
	end := time.Now()
	link := closeWindows(t.link, end)
	nodes := closeWindows(t.nodes, end)
	gateway := closeWindows(t.gateway, end)
	t.mu.Unlock()
	link = append(link, VerdictWindows(recs, nodes, applyGrace)...)
	c := CheckLoss(rep.Flows, link, gateway, r.l.FirewallOf, lossMargin)
	r.rep.Traffic = &c
	for _, v := range c.Violations {
		r.violate("invariant 6: %s", v)
	}
	fails := traffic.FailuresOf(rep.Conns)
	r.rep.TrafficNote = append(r.rep.TrafficNote,
		fmt.Sprintf("gateway moves seen (VRRP, polled every 200 ms): %d", t.moves),
		fmt.Sprintf("TCP connections: %d, failed %d (not an invariant: new connections fail while a dead link is still in the rules)", len(rep.Conns), fails.Failed))
	for _, fw := range []string{lab.FW1, lab.FW2} {
		if n, err := r.c.VRRPMasterEntries(fw); err == nil {
			r.rep.TrafficNote = append(r.rep.TrafficNote, fmt.Sprintf("keepalived %s entered MASTER %d times", fw, n))
		}
	}
}

func closeWindows(ws []Window, end time.Time) []Window {
	out := make([]Window, len(ws))
	for i, w := range ws {
		if w.To.IsZero() {
			w.To = end
		}
		out[i] = w
	}
	return out
}

// VerdictWindows are the link windows of the verdict's own changes: every
// transition of a link and every override set or cleared on it, from its
// audit time until applyGrace later, or until applyGrace after the end of
// a fault that kept a firewall from applying it (nodes: agent killed or
// stopped, sync segment split or cut) when one was active at that time.
// The flows on that link move (their conntrack entries are killed) or the
// link comes back: it did not stay up.
func VerdictWindows(recs []cluster.AuditRecord, nodes []Window, grace time.Duration) []Window {
	var out []Window
	for _, rec := range recs {
		if rec.Link == "" || (rec.Kind != cluster.KindTransition && rec.Kind != cluster.KindOverride) {
			continue
		}
		to := rec.Time.Add(grace)
		for _, n := range nodes {
			if !rec.Time.Before(n.From) && !rec.Time.After(n.To) {
				to = maxTime(to, n.To.Add(grace))
			}
		}
		what := fmt.Sprintf("verdict %d: %s %s→%s", rec.VerdictSeq, rec.Link, rec.From, rec.To)
		if rec.Kind == cluster.KindOverride {
			what = "override on " + rec.Link
		}
		out = append(out, Window{From: rec.Time, To: to, Link: rec.Link, What: what, Cause: "verdict change"})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].From.Before(out[j].From) })
	return out
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
