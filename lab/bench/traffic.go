package main

// Real traffic through the Linux pair (lab.StartLinux): what a LAN client
// sees when a link is cut, for gwstated (dataplane: nft) and for the
// ifstated method run on the same Linux data plane in the same run (a ping
// of isp1's gateway every 10 s in each firewall, flipping the same rules,
// rendered by nftapply, on one result).
//
// Per cut/restore cycle a fresh client (20 UDP streams at 100/s, 40 new
// TCP connections/s) runs through the cut and the recovery:
//
//	outage, flows on the failed link   the longest gap of each flow that
//	                                   was on isp1 at the cut (send times
//	                                   of consecutive echoed datagrams)
//	outage, new connections            cut → start of the last failed
//	                                   connection attempt (0: none failed)
//	lost on the surviving link         datagrams lost by flows on isp2, over
//	                                   all cycles, split: within 1 s of a
//	                                   gateway event, and with none (goal 0)
//	receive-buffer drops               UDP RcvbufErrors in the namespaces of
//	                                   the lab's servers and client: loss
//	                                   that is the lab's own (a receiver
//	                                   starved of CPU), printed beside
//	gateway moved                      cycles in which fw2's keepalived
//	                                   logged MASTER (a demotion, or a VRRP
//	                                   flap on a loaded machine)
//	gateway events                     cycles in which `ip -ts monitor` on
//	                                   fw1, fw2 or the LAN host saw the VRRP
//	                                   address added/deleted or the host's
//	                                   gateway MAC change (µs resolution:
//	                                   flips too short for a poll, and for
//	                                   keepalived's log, are seen)
//
// Then impaired-master handovers: isp1 drops fw1's packets only, with the
// client running. gwstated demotes fw1 through keepalived's track file and
// the LAN gateway moves to fw2; the ifstated method has no demotion (fw1
// keeps the address and flips its own rules):
//
//	handover gap                       the longest gap of the flows not on
//	                                   isp1 (their only disturbance is the
//	                                   move of the gateway, there and back)
//	one firewall loses isp1            the longest gap of the flows on isp1
//	                                   via fw1

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"gwstated/lab"
	"gwstated/lab/traffic"
)

type trafficColumn struct {
	name                string
	movedGap, connOut   []time.Duration
	handoverGap, oneFW  []time.Duration
	survivorLost        uint64 // not near a gateway event (goal 0)
	survivorLostFlip    uint64 // within gatewaySlack of a gateway event
	gatewayFlips        int    // cycles with a gateway event (ip monitor)
	rcvbufDrops         uint64 // UDP receive-buffer drops in the servers' and the client's namespaces
	survivorFlows, cuts int
	handovers           int
	vrrpMoved           int  // cut cycles in which fw2 became master
	noHandover          bool // the method does not move the gateway
	cutTimes            []time.Time
	breakdown           *breakdown // gwstated: the hops of each cut (breakdown.go)
}

// method is what differs between gwstated and the ifstated method.
type method struct {
	c *lab.Cluster
	// waitDown and waitUp wait until the rules without / with isp1 are
	// in both firewalls after since.
	waitDown, waitUp func(ctx context.Context, since time.Time) error
}

func measureTraffic(ctx context.Context, bin lab.Binaries, o options, log io.Writer) ([]*trafficColumn, error) {
	trbin, err := lab.BuildTraffic(ctx, filepath.Dir(bin.Gwstated))
	if err != nil {
		return nil, err
	}
	if why := lab.KeepalivedMissing(); why != "" {
		return nil, fmt.Errorf("%s (or -traffic=false)", why)
	}
	var cols []*trafficColumn
	for _, p := range o.profiles {
		col := &trafficColumn{name: "gwstated " + p}
		if err := trafficGwstated(ctx, bin, trbin, p, o, col, log); err != nil {
			return nil, fmt.Errorf("gwstated %s: %w", p, err)
		}
		cols = append(cols, col)
	}
	if o.baseline {
		col := &trafficColumn{name: "ifstated method", noHandover: true}
		if err := trafficRecipe(ctx, bin, trbin, o, col, log); err != nil {
			return nil, fmt.Errorf("ifstated method: %w", err)
		}
		cols = append(cols, col)
	}
	return cols, nil
}

func trafficGwstated(ctx context.Context, bin lab.Binaries, trbin, profile string, o options, col *trafficColumn, log io.Writer) error {
	l, err := lab.New(ctx, lab.Options{})
	if err != nil {
		return err
	}
	defer l.Close()
	dir, err := os.MkdirTemp("", "gwstated-bench-traffic-")
	if err != nil {
		return err
	}
	c, err := lab.StartLinux(ctx, l, lab.LinuxOptions{Traffic: trbin,
		Cluster: lab.ClusterOptions{Bin: bin, Dir: dir, Profile: profile, NoDamping: true, Log: log}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab-bench: logs kept in", dir)
		return err
	}
	defer func() {
		c.Close()
		if o.keep {
			fmt.Fprintln(os.Stderr, "lab-bench: traffic lab kept in", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	if err := startMonitors(c); err != nil {
		return err
	}
	reads := newCutReads(c) // breakdown.go
	if err := reads.settled(ctx); err != nil {
		return err
	}
	m := method{c: c,
		waitDown: func(ctx context.Context, cut time.Time) error {
			if err := c.WaitApplied(ctx, []string{"isp2"}, 30*time.Second); err != nil {
				return err
			}
			return reads.cutDone(ctx, cut)
		},
		waitUp: func(ctx context.Context, _ time.Time) error {
			if err := c.WaitApplied(ctx, []string{"isp1", "isp2"}, 60*time.Second); err != nil {
				return err
			}
			return reads.settled(ctx)
		},
	}
	fmt.Fprintf(os.Stderr, "lab-bench: traffic, gwstated %s: %d cuts, %d handovers\n", profile, o.trafficCuts, o.handovers)
	if err := measureCycles(ctx, trbin, m, o, col); err != nil {
		return err
	}
	col.breakdown = &breakdown{}
	return measureBreakdown(ctx, c, col.cutTimes, reads, col.breakdown)
}

func trafficRecipe(ctx context.Context, bin lab.Binaries, trbin string, o options, col *trafficColumn, log io.Writer) error {
	l, err := lab.New(ctx, lab.Options{})
	if err != nil {
		return err
	}
	defer l.Close()
	dir, err := os.MkdirTemp("", "gwstated-bench-traffic-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c, dp, err := lab.StartLinuxManual(ctx, l, bin, trbin, dir, log)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := startMonitors(c); err != nil {
		return err
	}
	s1, _ := l.ISP("isp1")
	var recipes []*recipe
	var seq atomic.Uint64 // both firewalls' loops flip
	seq.Store(1)
	for _, fw := range []string{lab.FW1, lab.FW2} {
		r := &recipe{l: l, fw: fw, gw: s1.Gateway4.String()}
		r.onFlip = func(ctx context.Context, up bool) {
			set := []string{"isp2"}
			if up {
				set = []string{"isp1", "isp2"}
			}
			if _, err := dp.Apply(ctx, fw, set, seq.Add(1)); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "lab-bench: ifstated method: %s: %v\n", fw, err)
			}
		}
		recipes = append(recipes, r)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, len(recipes))
	for _, r := range recipes {
		go func() { r.run(rctx); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for range recipes {
			<-done
		}
	}()
	for _, r := range recipes {
		if _, err := r.waitState(ctx, true, time.Time{}); err != nil {
			return err
		}
	}
	waitDown := func(ctx context.Context, since time.Time) error {
		for _, r := range recipes {
			if _, err := r.waitState(ctx, false, since); err != nil {
				return err
			}
		}
		return nil
	}
	// waitUp waits for the loops that are down now (one firewall's, after
	// a fault of that firewall only).
	waitUp := func(ctx context.Context, since time.Time) error {
		for _, r := range recipes {
			r.mu.Lock()
			up := r.up
			r.mu.Unlock()
			if up {
				continue
			}
			if _, err := r.waitState(ctx, true, since); err != nil {
				return err
			}
		}
		return nil
	}
	m := method{c: c, waitDown: waitDown, waitUp: waitUp}
	fmt.Fprintf(os.Stderr, "lab-bench: traffic, ifstated method: %d cuts, %d handovers (ping every 10 s: this takes a while)\n", o.trafficCuts, o.handovers)
	return measureCycles(ctx, trbin, m, o, col)
}

func measureCycles(ctx context.Context, trbin string, m method, o options, col *trafficColumn) error {
	c := m.c
	for i := range o.trafficCuts {
		start := time.Now()
		run, err := c.StartClient(trbin, lab.TrafficOptions{Name: fmt.Sprintf("client-cut-%d", i), Flows: 20, ConnRate: 40})
		if err != nil {
			return err
		}
		base, err := waitStatus(ctx, run, "30 echoes per flow", lab.FlowsReceivedSince(traffic.Status{}, 30, ""))
		if err != nil {
			return err
		}
		if err := pause(ctx, time.Duration(rand.Int64N(int64(time.Second)))); err != nil {
			return err
		}
		on1 := onISP(base, "isp1")
		clientName := fmt.Sprintf("client-cut-%d", i)
		udp0, err := endpointUDP(c, clientName)
		if err != nil {
			return err
		}
		masters, err := c.VRRPMasterEntries(lab.FW2)
		if err != nil {
			return err
		}
		cut := time.Now()
		if err := c.Lab.Cut(ctx, "isp1"); err != nil {
			return err
		}
		col.cutTimes = append(col.cutTimes, cut)
		if err := m.waitDown(ctx, cut); err != nil {
			return fmt.Errorf("cut %d: %w", i, err)
		}
		moved, err := waitStatus(ctx, run, "every flow through isp2", lab.FlowsReceivedSince(base, 50, "isp2"))
		if err != nil {
			return fmt.Errorf("cut %d: %w", i, err)
		}
		restore := time.Now()
		if err := c.Lab.Restore(ctx, "isp1"); err != nil {
			return err
		}
		if err := m.waitUp(ctx, restore); err != nil {
			return fmt.Errorf("restore %d: %w", i, err)
		}
		if _, err := waitStatus(ctx, run, "20 more echoes per flow", lab.FlowsReceivedSince(moved, 20, "")); err != nil {
			return fmt.Errorf("restore %d: %w", i, err)
		}
		udp1, err := endpointUDP(c, clientName)
		if err != nil {
			return err
		}
		rep, err := run.Stop()
		if err != nil {
			return err
		}
		for who, n := range udp1 {
			if d := n - udp0[who]; d > 0 {
				col.rcvbufDrops += d
				if o.verbose {
					fmt.Fprintf(os.Stderr, "  %s cut %d: %s: %d UDP datagrams dropped, receive buffer full (RcvbufErrors)\n", col.name, i, who, d)
				}
			}
		}
		if n, err := c.VRRPMasterEntries(lab.FW2); err != nil {
			return err
		} else if n > masters {
			col.vrrpMoved++
		}
		events, err := gatewayEvents(c, start, time.Now())
		if err != nil {
			return err
		}
		if len(events) > 0 {
			col.gatewayFlips++
		}
		if o.verbose {
			for _, e := range events {
				fmt.Fprintf(os.Stderr, "  %s cut %d: gateway event at cut%+v: %s\n", col.name, i, e.At.Sub(cut).Round(time.Millisecond), e)
			}
		}
		for _, f := range rep.Flows {
			if slices.Contains(on1, f.Flow) {
				col.movedGap = append(col.movedGap, f.LongestGap)
			} else {
				col.survivorFlows++
				// Each gap's loss counts against the goal unless a
				// gateway event lies within gatewaySlack of it; the
				// datagrams lost without a gap record (none expected)
				// count against the goal too.
				var flip uint64
				for _, g := range f.Gaps {
					if nearGatewayEvent(events, g.From, g.To) {
						flip += g.Lost
					}
				}
				col.survivorLostFlip += flip
				col.survivorLost += f.Lost - flip
				if o.verbose {
					for _, g := range f.Gaps {
						fmt.Fprintf(os.Stderr, "  %s cut %d: flow %d on isp2 lost %d from cut%+v to cut%+v (restore at cut%+v; %s to %s)\n",
							col.name, i, f.Flow, g.Lost, g.From.Sub(cut).Round(time.Millisecond), g.To.Sub(cut).Round(time.Millisecond), restore.Sub(cut).Round(time.Millisecond),
							g.From.UTC().Format("15:04:05.000000"), g.To.UTC().Format("15:04:05.000000"))
					}
				}
			}
		}
		var out time.Duration
		if fl := traffic.FailuresOf(rep.Conns); fl.Failed > 0 {
			out = fl.Last.Sub(cut)
		}
		col.connOut = append(col.connOut, out)
		col.cuts++
	}
	for i := range o.handovers {
		if err := handover(ctx, trbin, m, i, col); err != nil {
			return fmt.Errorf("handover %d: %w", i, err)
		}
	}
	return nil
}

// handover faults isp1 for fw1 only with a client running, and clears it.
func handover(ctx context.Context, trbin string, m method, i int, col *trafficColumn) error {
	c := m.c
	run, err := c.StartClient(trbin, lab.TrafficOptions{Name: fmt.Sprintf("client-handover-%d", i), Flows: 20, ConnRate: 40})
	if err != nil {
		return err
	}
	base, err := waitStatus(ctx, run, "30 echoes per flow", lab.FlowsReceivedSince(traffic.Status{}, 30, ""))
	if err != nil {
		return err
	}
	on1 := onISP(base, "isp1")
	fault := time.Now()
	if err := c.Lab.AddFault(ctx, "isp1", lab.Fault{Loss: 100, Peers: c.Lab.FirewallPeers(lab.FW1, "isp1")}); err != nil {
		return err
	}
	// Either the gateway moves to fw2 (gwstated) or fw1 flips its own rules
	// (the ifstated method): every flow echoes again.
	moved, err := waitStatus(ctx, run, "every flow echoed 50 times after the fault", func(st traffic.Status) bool {
		if !lab.FlowsReceivedSince(base, 50, "")(st) {
			return false
		}
		for _, f := range st.Flows {
			if !f.Last.After(fault.Add(100*time.Millisecond)) || slices.Contains(on1, f.Flow) && f.ISP == "isp1" && c.Lab.FirewallOf(f.Source) == lab.FW1 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	restore := time.Now()
	if err := c.Lab.Clear(ctx, "isp1"); err != nil {
		return err
	}
	if col.noHandover {
		if err := m.waitUp(ctx, restore); err != nil {
			return err
		}
	} else if err := c.WaitVRRPMaster(ctx, lab.FW1, 30*time.Second); err != nil {
		return err
	}
	if _, err := waitStatus(ctx, run, "every flow through fw1 again", func(st traffic.Status) bool {
		if !lab.FlowsReceivedSince(moved, 50, "")(st) {
			return false
		}
		for _, f := range st.Flows {
			if c.Lab.FirewallOf(f.Source) != lab.FW1 {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	rep, err := run.Stop()
	if err != nil {
		return err
	}
	for _, f := range rep.Flows {
		if slices.Contains(on1, f.Flow) {
			col.oneFW = append(col.oneFW, f.LongestGap)
		} else {
			col.handoverGap = append(col.handoverGap, f.LongestGap)
		}
	}
	col.handovers++
	return nil
}

// gatewaySlack: a surviving flow's gap whose loss lies within this of a
// gateway event (the VRRP address added or deleted on a firewall, the
// LAN host's gateway MAC changing) is attributed to that event. A VRRP
// flip takes the master-down interval to happen (3 × advert_int + skew,
// ~0.3 s at 0.1) and the host's neighbour entry follows the gratuitous
// ARPs; 1 s covers both sides of it.
const gatewaySlack = time.Second

// endpointUDP returns the UDP receive-buffer drops (RcvbufErrors) in the
// namespaces of the traffic servers and of the client named client.
func endpointUDP(c *lab.Cluster, client string) (map[string]uint64, error) {
	out := map[string]uint64{}
	names := []string{client}
	for _, s := range c.Lab.ISPs() {
		names = append(names, "traffic-"+s.Name)
	}
	for _, name := range names {
		st, err := c.UDPStats(name)
		if err != nil {
			return nil, err
		}
		out[name] = st["RcvbufErrors"]
	}
	return out, nil
}

// startMonitors records the gateway's moves on both firewalls and on the
// LAN host (lab.Cluster.StartMonitor).
func startMonitors(c *lab.Cluster) error {
	for _, role := range append(c.Lab.Firewalls(), "lan") {
		if err := c.StartMonitor(role); err != nil {
			return err
		}
	}
	return nil
}

// gatewayEvents returns the gateway events between from and to.
func gatewayEvents(c *lab.Cluster, from, to time.Time) ([]lab.GatewayEvent, error) {
	all, err := c.GatewayEvents()
	if err != nil {
		return nil, err
	}
	var out []lab.GatewayEvent
	for _, e := range all {
		if !e.At.Before(from) && !e.At.After(to) {
			out = append(out, e)
		}
	}
	return out, nil
}

// nearGatewayEvent reports whether an event lies in [from-gatewaySlack,
// to+gatewaySlack].
func nearGatewayEvent(events []lab.GatewayEvent, from, to time.Time) bool {
	return slices.ContainsFunc(events, func(e lab.GatewayEvent) bool {
		return !e.At.Before(from.Add(-gatewaySlack)) && !e.At.After(to.Add(gatewaySlack))
	})
}

func waitStatus(ctx context.Context, run *lab.TrafficRun, what string, cond func(traffic.Status) bool) (traffic.Status, error) {
	if err := run.WaitStatus(ctx, 60*time.Second, what, cond); err != nil {
		return traffic.Status{}, err
	}
	return run.Status()
}

func onISP(st traffic.Status, isp string) []uint32 {
	var out []uint32
	for _, f := range st.Flows {
		if f.ISP == isp {
			out = append(out, f.Flow)
		}
	}
	return out
}

func printTrafficTable(w io.Writer, o options, cols []*trafficColumn) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "real traffic (client-observed, p50 / p99)\t")
	for _, c := range cols {
		fmt.Fprintf(tw, "%s\t", c.name)
	}
	fmt.Fprintln(tw, "goal\t")
	row := func(name, goal string, get func(*trafficColumn) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, c := range cols {
			fmt.Fprintf(tw, "%s\t", get(c))
		}
		fmt.Fprintf(tw, "%s\t\n", goal)
	}
	pp := func(ds []time.Duration) string {
		if len(ds) == 0 {
			return "-"
		}
		return fmt.Sprintf("%s / %s (n=%d)", fmtD(pct(ds, 50)), fmtD(pct(ds, 99)), len(ds))
	}
	row("outage of flows on the cut link (longest gap)", "fast p99 ≤ 0.8s", func(c *trafficColumn) string { return pp(c.movedGap) })
	row("outage of new connections (cut → last failure)", "", func(c *trafficColumn) string { return pp(c.connOut) })
	row("datagrams lost on the surviving link", "", func(c *trafficColumn) string {
		return fmt.Sprintf("%d (%d flows, %d cycles)", c.survivorLost+c.survivorLostFlip, c.survivorFlows, c.cuts)
	})
	row("  of which within 1s of a gateway event", "", func(c *trafficColumn) string {
		return fmt.Sprintf("%d", c.survivorLostFlip)
	})
	row("  of which with no gateway event (goal)", "0", func(c *trafficColumn) string {
		return fmt.Sprintf("%d", c.survivorLost)
	})
	row("UDP receive-buffer drops at the lab's servers and client", "", func(c *trafficColumn) string {
		return fmt.Sprintf("%d", c.rcvbufDrops)
	})
	row("cycles in which the LAN gateway moved (keepalived log)", "0", func(c *trafficColumn) string {
		return fmt.Sprintf("%d of %d", c.vrrpMoved, c.cuts)
	})
	row("cycles with a gateway event (ip monitor)", "0", func(c *trafficColumn) string {
		return fmt.Sprintf("%d of %d", c.gatewayFlips, c.cuts)
	})
	row("impaired-master handover gap (longest)", "≤ 1s", func(c *trafficColumn) string {
		if c.noHandover {
			return "no demotion: no handover"
		}
		return pp(c.handoverGap)
	})
	row("one firewall loses isp1: its flows' gap", "", func(c *trafficColumn) string { return pp(c.oneFW) })
	tw.Flush()
}
