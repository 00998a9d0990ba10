package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"gwstated/lab/traffic"
)

// DemoTrafficOptions configure DemoTraffic.
type DemoTrafficOptions struct {
	Bin     Binaries
	Traffic string // the gwtraffic binary (BuildTraffic)
	Dir     string // work directory; required
	Verbose bool   // also the harness's process starts and stops
}

// DemoTraffic is `make demo-traffic`: the Linux lab with real traffic.
// gwstated runs the nft data plane on fw1 and fw2, keepalived holds the
// LAN gateway on fw1, and the LAN host sends 20 UDP streams (100
// datagrams/s each) and 20 new TCP connections per second to the internet
// host behind both ISPs. It cuts isp1 while the traffic flows, printing
// twice a second which ISP carries the flows, then the numbers: per flow
// loss and longest gap, failed connections; restores isp1 and tears
// everything down. It returns an error when the traffic does not behave
// as the scenarios require.
func DemoTraffic(ctx context.Context, w io.Writer, opt DemoTrafficOptions) (err error) {
	start := time.Now()
	say := func(format string, args ...any) { fmt.Fprintf(w, "\n==> "+format+"\n", args...) }
	step := func(format string, args ...any) { fmt.Fprintf(w, "    "+format+"\n", args...) }

	say("Building the lab: namespaces for fw1, fw2, isp1, isp2, a witness and a LAN host; forwarding on in the firewalls")
	l, err := New(ctx, Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	copt := ClusterOptions{Bin: opt.Bin, Dir: opt.Dir, Profile: "fast", NoDamping: true}
	if opt.Verbose {
		copt.Log = w
	}
	say("Starting gwstated (dataplane: nft, fast probes) on fw1, fw2 and the witness, keepalived (VRRP, advert_int 0.1) on fw1 and fw2, a traffic server at %s behind each ISP", Internet4)
	c, err := StartLinux(ctx, l, LinuxOptions{Cluster: copt, Traffic: opt.Traffic})
	if err != nil {
		return fmt.Errorf("the Linux lab did not come up: %w", err)
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	step("LAN host %s → default gateway %s (VRRP, held by fw1) → fw1/fw2 wan0 → isp1, wan1 → isp2 → %s", l.LANAddr("lan"), LANGateway, Internet4)
	table, err := c.NFTTable(ctx, FW1)
	if err != nil {
		return err
	}
	say("fw1's `nft list table inet gwstated` (the same on fw2)")
	fmt.Fprint(w, indent(table))

	say("Starting the client on the LAN host: 20 UDP streams at 100 datagrams/s, 20 new TCP connections/s")
	run, err := c.StartClient(opt.Traffic, TrafficOptions{Flows: 20, Rate: 100, ConnRate: 20})
	if err != nil {
		return err
	}
	defer func() { _ = c.Stop(run.name, 10*time.Second) }()
	if err := run.WaitStatus(ctx, 30*time.Second, "100 echoes per flow", FlowsReceivedSince(traffic.Status{}, 100, "")); err != nil {
		return err
	}
	before, err := run.Status()
	if err != nil {
		return err
	}
	var on1 []uint32
	for _, f := range before.Flows {
		if f.ISP == "isp1" {
			on1 = append(on1, f.Flow)
		}
	}
	step("flows per ISP: %s; connections so far: %s", perISP(before), connsLine(before))

	say("Cutting isp1 (nft drops everything in isp1's namespace) while the traffic flows; the client's view twice a second:")
	cut := time.Now()
	if err := l.Cut(ctx, "isp1"); err != nil {
		return err
	}
	var wg sync.WaitGroup
	watchCtx, stopWatch := context.WithCancel(ctx)
	wg.Go(func() { watch(watchCtx, w, run, cut) })
	err = c.WaitApplied(ctx, []string{"isp2"}, 20*time.Second)
	applied := time.Now()
	if err == nil {
		err = run.WaitStatus(ctx, 20*time.Second, "every flow through isp2", FlowsReceivedSince(before, 100, "isp2"))
	}
	stopWatch()
	wg.Wait()
	if err != nil {
		return err
	}
	step("both firewalls applied the rules without isp1 (seen by gwctl status) %s after the cut", roundMs(applied.Sub(cut)))
	out, err := c.Gwctl(ctx, "history", "--link", "isp1", "--limit", "1")
	if err != nil {
		return err
	}
	fmt.Fprint(w, indent(out))

	say("Restoring isp1")
	restore := time.Now()
	if err := l.Restore(ctx, "isp1"); err != nil {
		return err
	}
	if err := c.WaitApplied(ctx, []string{"isp1", "isp2"}, 30*time.Second); err != nil {
		return err
	}
	recovered := time.Now()
	step("both firewalls applied the rules with isp1 again %s after the restore", roundMs(recovered.Sub(restore)))
	atRecovery, err := run.Status()
	if err != nil {
		return err
	}
	if err := run.WaitStatus(ctx, 20*time.Second, "new connections on isp1 again", func(st traffic.Status) bool {
		return st.Conns["isp1"] >= atRecovery.Conns["isp1"]+5
	}); err != nil {
		return err
	}
	rep, err := run.Stop()
	if err != nil {
		return err
	}

	say("The numbers (client-side, per flow: gaps are measured on send times of consecutive echoed datagrams)")
	var moved, stayed []time.Duration
	var lostStayed uint64
	for _, f := range rep.Flows {
		if slices.Contains(on1, f.Flow) {
			moved = append(moved, f.LongestGap)
		} else {
			stayed = append(stayed, f.LongestGap)
			lostStayed += f.Lost
		}
	}
	step("%-44s %d flows, longest gap p50 %s, max %s", "flows on isp1 at the cut (moved to isp2):", len(moved), roundMs(pct(moved, 50)), roundMs(pct(moved, 100)))
	step("%-44s %d flows, %d datagrams lost (goal 0), longest gap max %s", "flows on isp2 at the cut:", len(stayed), lostStayed, roundMs(pct(stayed, 100)))
	f := traffic.FailuresOf(rep.Conns)
	step("%-44s %d of %d failed, from %s to %s after the cut", "new TCP connections:", f.Failed, len(rep.Conns), roundMs(f.First.Sub(cut)), roundMs(f.Last.Sub(cut)))
	n := traffic.CountByISP(traffic.Filter(rep.Conns, func(x traffic.Conn) bool { return x.Start.After(recovered) }))
	step("%-44s %v", "connections after the recovery, per ISP:", n)
	if lostStayed > 0 {
		err = fmt.Errorf("flows on isp2 lost %d datagrams across the failover", lostStayed)
	}
	for _, fr := range rep.Flows {
		for _, g := range fr.Gaps {
			if g.Open {
				err = errors.Join(err, fmt.Errorf("flow %d did not resume", fr.Flow))
			}
		}
	}
	say("Tearing down the agents, keepalived, the traffic and the namespaces (demo took %s)", time.Since(start).Round(100*time.Millisecond))
	return err
}

// watch prints the client's view every 500 ms until ctx ends.
func watch(ctx context.Context, w io.Writer, run *TrafficRun, since time.Time) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	prev, _ := run.Status()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := run.Status()
		if err != nil {
			continue
		}
		silent := 0
		for i, f := range st.Flows {
			if i < len(prev.Flows) && f.Received == prev.Flows[i].Received {
				silent++
			}
		}
		fmt.Fprintf(w, "    +%-6s flows per ISP %-18s silent in the last 0.5 s: %2d   connections %s\n",
			roundMs(time.Since(since)).Truncate(100*time.Millisecond), perISP(st), silent, connsLine(st))
		prev = st
	}
}

func perISP(st traffic.Status) string {
	m := map[string]int{}
	for _, f := range st.Flows {
		m[f.ISP]++
	}
	return fmt.Sprintf("isp1 %d, isp2 %d", m["isp1"], m["isp2"])
}

func connsLine(st traffic.Status) string {
	return fmt.Sprintf("ok isp1 %d, isp2 %d, failed %d", st.Conns["isp1"], st.Conns["isp2"], st.Fails)
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(k, len(s)-1))]
}
