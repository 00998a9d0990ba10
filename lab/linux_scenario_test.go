package lab

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gwstated/lab/traffic"
)

// startLinux builds a lab and starts the real-traffic variant in it
// (StartLinux): gwstated on the nft data plane, keepalived, the traffic
// servers. Everything is stopped when the test ends; logs are shown when
// it failed.
func startLinux(t *testing.T, opt ClusterOptions) *Cluster {
	t.Helper()
	requireLinux(t)
	bin := gwtraffic(t)
	l := Start(t, Options{})
	opt.Bin = binaries(t)
	opt.Dir = t.TempDir()
	opt.Log = testLog{t}
	c, err := StartLinux(t.Context(), l, LinuxOptions{Cluster: opt, Traffic: bin})
	if err != nil {
		dumpLogs(t, opt.Dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
		if t.Failed() {
			dumpLogs(t, opt.Dir)
		}
	})
	return c
}

// client starts a traffic client and stops it when the test ends (when the
// test did not stop it itself).
func client(t *testing.T, c *Cluster, o TrafficOptions) *TrafficRun {
	t.Helper()
	run, err := c.StartClient(trafficBin.path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(run.name, 10*time.Second) })
	return run
}

func waitTraffic(t *testing.T, run *TrafficRun, timeout time.Duration, what string, cond func(traffic.Status) bool) traffic.Status {
	t.Helper()
	if err := run.WaitStatus(t.Context(), timeout, what, cond); err != nil {
		t.Fatal(err)
	}
	st, err := run.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func stopTraffic(t *testing.T, run *TrafficRun) traffic.Report {
	t.Helper()
	rep, err := run.Stop()
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// onISP returns the flows whose newest echo came through isp.
func onISP(st traffic.Status, isp string) []uint32 {
	var out []uint32
	for _, f := range st.Flows {
		if f.ISP == isp {
			out = append(out, f.Flow)
		}
	}
	return out
}

// percentile returns the p-th percentile (0..100, nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(k, len(s)-1))]
}

// connsSince returns the successful connections started after t, per ISP.
func connsSince(rep traffic.Report, port int, t time.Time) map[string]int {
	return traffic.CountByISP(traffic.Filter(rep.Conns, func(c traffic.Conn) bool {
		return c.Port == port && c.Start.After(t)
	}))
}

// TestLinuxTraffic runs the real-traffic scenarios on one Linux lab:
// gwstated (dataplane: nft, fast probe profile) on fw1 and fw2,
// keepalived VRRP on the LAN (fw1 master), a client on the LAN sending
// UDP streams and new TCP connections to the internet host behind both
// ISPs. The subtests run in order on the same cluster; each leaves it as
// it found it (every link up, fw1 master), and a failed one stops the rest.
func TestLinuxTraffic(t *testing.T) {
	c := startLinux(t, ClusterOptions{Profile: "fast", NoDamping: true})
	for _, s := range []struct {
		name string
		f    func(*testing.T, *Cluster)
	}{
		{"1-spread", linuxSpread},
		{"2-3-cut-isp1", linuxCut},
		{"6-all-down", linuxAllDown},
		{"5-master-agent-killed", linuxAgentKilled},
		{"4-one-firewall-loses-isp1", linuxOneFirewall},
	} {
		start := time.Now()
		ok := t.Run(s.name, func(t *testing.T) { s.f(t, c) })
		t.Logf("%s: %v", s.name, time.Since(start).Round(time.Millisecond))
		if !ok {
			return
		}
	}
}

// linuxSpread is scenario 1: new connections spread over both links
// (each 35–65 % of at least 200), and so do the UDP streams; nothing is
// lost while every link is up.
func linuxSpread(t *testing.T, c *Cluster) {
	// One config file for every node (each firewall's track file under
	// nodes.<n>.vrrp.track_file): the nodes report the same config hash.
	if out, _ := c.Gwctl(t.Context(), "status"); strings.Contains(out, "config hash differs") {
		t.Errorf("gwctl status:\n%s", out)
	}
	run := client(t, c, TrafficOptions{Flows: 10, ConnRate: 100})
	waitTraffic(t, run, 30*time.Second, "250 connections and 100 echoes per flow", func(st traffic.Status) bool {
		return st.Conns["isp1"]+st.Conns["isp2"] >= 250 && FlowsReceivedSince(traffic.Status{}, 100, "")(st)
	})
	rep := stopTraffic(t, run)
	n := traffic.CountByISP(rep.Conns)
	total := n["isp1"] + n["isp2"]
	if total < 200 {
		t.Fatalf("%d connections, want at least 200", total)
	}
	for _, isp := range []string{"isp1", "isp2"} {
		if share := float64(n[isp]) / float64(total); share < 0.35 || share > 0.65 {
			t.Errorf("%s carried %d of %d connections (%.0f%%), want 35–65%%", isp, n[isp], total, 100*share)
		}
	}
	if fails := len(rep.Conns) - total; fails > 0 {
		t.Errorf("%d connections failed with every link up", fails)
	}
	flows := map[string]int{}
	for _, f := range rep.Flows {
		if f.Lost > 0 || len(f.ISPs()) != 1 {
			t.Errorf("flow %d: lost %d, ISPs %v: want no loss, one ISP", f.Flow, f.Lost, f.ISPs())
		}
		flows[f.Segments[0].ISP]++
		if fw := c.Lab.FirewallOf(f.Segments[0].Source); fw != FW1 {
			t.Errorf("flow %d NAT'd by %q, want fw1 (the VRRP master)", f.Flow, fw)
		}
	}
	if flows["isp1"] == 0 || flows["isp2"] == 0 {
		t.Errorf("UDP flows per ISP %v: want both", flows)
	}
	t.Logf("connections per ISP %v of %d; UDP flows per ISP %v", n, total, flows)
}

// linuxCut is scenarios 2 and 3: isp1 cut upstream (everything dropped in
// isp1's namespace). Flows on isp2 lose no packet across the failover and
// the recovery; flows on isp1 move to isp2 and resume; new connections
// fail only between the cut and the rules without isp1; the sticky class
// (https, tcp 443: isp1, the first link) stays on isp1 while it is up,
// moves to isp2 when it fails, and new https connections return to isp1
// after the recovery.
func linuxCut(t *testing.T, c *Cluster) {
	ctx := t.Context()
	run := client(t, c, TrafficOptions{Flows: 20, ConnRate: 40, Ports: []int{TrafficTCPPort, StickyTCPPort}})
	before := waitTraffic(t, run, 30*time.Second, "100 echoes per flow", FlowsReceivedSince(traffic.Status{}, 100, ""))
	on1 := onISP(before, "isp1")
	if len(on1) == 0 || len(on1) == len(before.Flows) {
		t.Fatalf("flows on isp1 before the cut: %v of %d: want some, not all", on1, len(before.Flows))
	}
	cut := time.Now()
	if err := c.Lab.Cut(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitApplied(ctx, []string{"isp2"}, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	moved := waitTraffic(t, run, 20*time.Second, "every flow echoed 100 times through isp2", FlowsReceivedSince(before, 100, "isp2"))
	restore := time.Now()
	if err := c.Lab.Restore(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitApplied(ctx, allUp(c), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	recovered := time.Now()
	waitTraffic(t, run, 20*time.Second, "100 more echoes per flow and new https connections on isp1", func(st traffic.Status) bool {
		l := st.Last["443"]
		return FlowsReceivedSince(moved, 100, "")(st) && l.OK && l.ISP == "isp1" && l.Start.After(recovered)
	})
	rep := stopTraffic(t, run)
	t.Logf("cut → both firewalls applied (seen by gwctl): %v; restore → applied: %v",
		applied.Sub(cut).Round(time.Millisecond), recovered.Sub(restore).Round(time.Millisecond))

	var movedGaps []time.Duration
	for _, f := range rep.Flows {
		was1 := slices.Contains(on1, f.Flow)
		for _, g := range f.Gaps {
			if g.Open {
				t.Errorf("flow %d did not resume: %+v", f.Flow, g)
			}
		}
		if !was1 {
			if f.Lost > 0 || !f.OnlyOn("isp2") {
				t.Errorf("flow %d on isp2: lost %d (gaps %+v), ISPs %v: want no loss across the failover and the recovery%s", f.Flow, f.Lost, f.Gaps, f.ISPs(), demotedDuring(t, c, cut, rep.Stop))
			}
			continue
		}
		if got := f.ISPs(); !slices.Equal(got, []string{"isp1", "isp2"}) {
			t.Errorf("flow %d on isp1: carried by %v, want isp1 then isp2 (and staying there)", f.Flow, got)
		}
		if n := f.LostBetween(cut.Add(time.Second), rep.Stop); n > 0 && f.LostBetween(applied.Add(time.Second), rep.Stop) > 0 {
			t.Errorf("flow %d lost datagrams after it moved: %+v", f.Flow, f.Gaps)
		}
		movedGaps = append(movedGaps, f.LongestGap)
	}
	t.Logf("flows moved from isp1: %d, longest gap p50 %v max %v", len(movedGaps),
		percentile(movedGaps, 50).Round(time.Millisecond), percentile(movedGaps, 100).Round(time.Millisecond))

	// New connections fail only in the detection window: attempts started
	// after the cut (less one connection timeout: a SYN in flight) and
	// before both firewalls had applied the rules without isp1.
	f := traffic.FailuresOf(rep.Conns)
	if f.Failed > 0 && (f.First.Before(cut.Add(-time.Second)) || f.Last.After(applied)) {
		t.Errorf("connections failed outside the detection window [%s, %s]: %+v", cut.Format(time.StampMilli), applied.Format(time.StampMilli), f)
	}
	t.Logf("new connections: %d failed, from %v to %v after the cut", f.Failed,
		f.First.Sub(cut).Round(time.Millisecond), f.Last.Sub(cut).Round(time.Millisecond))
	// Sticky: https on isp1 before the cut, isp2 while it is down, isp1 after.
	https := func(from, to time.Time) map[string]int {
		return traffic.CountByISP(traffic.Filter(rep.Conns, func(x traffic.Conn) bool {
			return x.Port == StickyTCPPort && x.Start.After(from) && x.Start.Before(to)
		}))
	}
	if n := https(rep.Start, cut); n["isp2"] > 0 || n["isp1"] == 0 {
		t.Errorf("https before the cut: %v, want isp1 only", n)
	}
	if n := https(applied, restore); n["isp1"] > 0 || n["isp2"] == 0 {
		t.Errorf("https while isp1 is down: %v, want isp2 only", n)
	}
	if n := https(recovered, rep.Stop); n["isp2"] > 0 || n["isp1"] == 0 {
		t.Errorf("https after the recovery: %v, want isp1 only", n)
	}
	if n := connsSince(rep, TrafficTCPPort, recovered); n["isp1"] == 0 || n["isp2"] == 0 {
		t.Errorf("plain connections after the recovery: %v, want both ISPs", n)
	}
}

// linuxAllDown is scenario 6: every link's probes fail (ICMP dropped at
// both ISPs; UDP and TCP still pass) and all_down: all treats every link
// as up: new connections still spread over both ISPs and no flow that
// stays on its ISP loses a packet.
func linuxAllDown(t *testing.T, c *Cluster) {
	ctx := t.Context()
	run := client(t, c, TrafficOptions{Flows: 10, ConnRate: 50})
	waitTraffic(t, run, 30*time.Second, "50 echoes per flow", FlowsReceivedSince(traffic.Status{}, 50, ""))
	for _, s := range c.Lab.ISPs() {
		if err := c.Lab.CutProbes(ctx, s.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitVerdict(ctx, 20*time.Second, "all_down", func(_ []string, allDown bool) bool { return allDown }); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	atDown, err := run.Status()
	if err != nil {
		t.Fatal(err)
	}
	waitTraffic(t, run, 30*time.Second, "100 more echoes per flow and 100 connections while all down", func(st traffic.Status) bool {
		return FlowsReceivedSince(atDown, 100, "")(st) && st.Conns["isp1"]+st.Conns["isp2"] >= 100+atDown.Conns["isp1"]+atDown.Conns["isp2"]
	})
	if err := c.WaitVerdict(ctx, time.Second, "still all_down", func(_ []string, allDown bool) bool { return allDown }); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	for _, s := range c.Lab.ISPs() {
		if err := c.Lab.Restore(ctx, s.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitApplied(ctx, allUp(c), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	rep := stopTraffic(t, run)
	n := traffic.CountByISP(traffic.Filter(rep.Conns, func(x traffic.Conn) bool { return x.Start.After(down) && x.Start.Before(up) }))
	if total := n["isp1"] + n["isp2"]; total < 100 {
		t.Errorf("%d connections while every link was down, want 100", total)
	} else if n["isp1"] < total/4 || n["isp2"] < total/4 {
		t.Errorf("connections while every link was down: %v, want both ISPs (all_down: all)", n)
	}
	if fl := traffic.FailuresOf(rep.Conns); fl.Failed > 0 {
		t.Errorf("connections failed: %+v", fl)
	}
	// The two links' probes fail a few milliseconds apart, so the verdict
	// may pass through "one link down, the other up" on its way to all
	// down: the first link's flows then move (their conntrack entries are
	// deleted) and a datagram in flight at that instant is lost. A flow
	// that stayed on its ISP must lose nothing; one that moved, only what
	// its short moves cost (the way back on restore is such a move too).
	for _, f := range rep.Flows {
		moves := len(f.ISPs()) - 1
		switch moved := moves > 0; {
		case !moved && f.Lost > 0:
			t.Errorf("flow %d stayed on %v and lost %d datagrams (gaps %+v)", f.Flow, f.ISPs(), f.Lost, f.Gaps)
		case moved && (len(f.Gaps) > moves || f.LongestGap > time.Second):
			t.Errorf("flow %d moved %v: gaps %+v, want at most one short gap (≤ 1s) per move", f.Flow, f.ISPs(), f.Gaps)
		case moved:
			t.Logf("flow %d moved %v when the first link was seen down: lost %d, longest gap %v", f.Flow, f.ISPs(), f.Lost, f.LongestGap)
		}
	}
	t.Logf("all down for %v: connections per ISP %v", up.Sub(down).Round(time.Millisecond), n)
}

// linuxAgentKilled is scenario 5: SIGKILL of the VRRP master's agent
// (fw1): the kernel keeps its rules and traffic keeps flowing; the
// restarted agent adopts its own table (no rewrite: the table text is the
// same) and no flow loses a datagram, no connection fails, over the whole
// kill and restart.
func linuxAgentKilled(t *testing.T, c *Cluster) {
	ctx := t.Context()
	if m, err := c.VRRPMaster(ctx); err != nil || m != FW1 {
		t.Fatalf("VRRP master %q (%v), want fw1", m, err)
	}
	run := client(t, c, TrafficOptions{Flows: 10, ConnRate: 50})
	before := waitTraffic(t, run, 30*time.Second, "50 echoes per flow", FlowsReceivedSince(traffic.Status{}, 50, ""))
	table, err := c.NFTTable(ctx, FW1)
	if err != nil || table == "" {
		t.Fatalf("fw1 has no gwstated table (%v)", err)
	}
	if err := c.Kill(FW1); err != nil {
		t.Fatal(err)
	}
	dead := waitTraffic(t, run, 20*time.Second, "100 more echoes per flow with fw1's agent dead", FlowsReceivedSince(before, 100, ""))
	restart := time.Now()
	if err := c.StartAgent(FW1); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitAppliedAfter(ctx, FW1, restart, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	adopted := time.Now()
	waitTraffic(t, run, 20*time.Second, "100 more echoes per flow after the restart", FlowsReceivedSince(dead, 100, ""))
	rep := stopTraffic(t, run)
	after, err := c.NFTTable(ctx, FW1)
	if err != nil {
		t.Fatal(err)
	}
	if after != table {
		t.Errorf("fw1's table changed across the restart:\n--- before\n%s\n--- after\n%s", table, after)
	}
	for _, f := range rep.Flows {
		if f.Lost > 0 || len(f.ISPs()) != 1 {
			t.Errorf("flow %d: lost %d (gaps %+v), ISPs %v", f.Flow, f.Lost, f.Gaps, f.ISPs())
		}
	}
	if fl := traffic.FailuresOf(rep.Conns); fl.Failed > 0 {
		t.Errorf("connections failed across the kill and restart: %+v", fl)
	}
	var gaps []time.Duration
	for _, f := range rep.Flows {
		gaps = append(gaps, f.LongestGap)
	}
	t.Logf("restarted agent reported applied after %v; longest gap of any flow %v, %d connections",
		adopted.Sub(restart).Round(time.Millisecond), percentile(gaps, 100).Round(time.Millisecond), len(rep.Conns))
}

// viaFirewall returns a condition: every flow has received n more echoes
// than in base and its newest came through firewall fw (its NAT source).
func viaFirewall(l *Lab, base traffic.Status, n int, fw string) func(traffic.Status) bool {
	return func(st traffic.Status) bool {
		if !FlowsReceivedSince(base, n, "")(st) {
			return false
		}
		for _, f := range st.Flows {
			if l.FirewallOf(f.Source) != fw {
				return false
			}
		}
		return true
	}
}

// waitTrack waits until node's track file holds want.
func waitTrack(t *testing.T, c *Cluster, node, want string) {
	t.Helper()
	err := Wait(t.Context(), 20*time.Second, node+" track file "+want, func() (bool, error) {
		b, err := os.ReadFile(c.TrackFile(node))
		return strings.TrimSpace(string(b)) == want, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// linuxOneFirewall is scenario 4: fw1 alone loses isp1 (isp1's gateway
// drops fw1's packets only). The verdict keeps isp1 up (fw2 reaches it),
// fw1 is impaired and writes its demotion into its track file, keepalived
// moves the LAN gateway to fw2, and the client's flows continue through
// fw2; when the fault goes, fw1 writes 0, takes the address back and the
// flows go through fw1 again. No flow is left without echoes.
func linuxOneFirewall(t *testing.T, c *Cluster) {
	ctx := t.Context()
	run := client(t, c, TrafficOptions{Flows: 10, ConnRate: 50})
	before := waitTraffic(t, run, 30*time.Second, "50 echoes per flow through fw1", viaFirewall(c.Lab, traffic.Status{}, 50, FW1))
	on1 := onISP(before, "isp1")
	fault := time.Now()
	if err := c.Lab.AddFault(ctx, "isp1", Fault{Loss: 100, Peers: c.Lab.FirewallPeers(FW1, "isp1")}); err != nil {
		t.Fatal(err)
	}
	waitTrack(t, c, FW1, "50")
	if err := c.WaitVRRPMaster(ctx, FW2, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	if err := c.WaitApplied(ctx, allUp(c), 10*time.Second); err != nil {
		t.Errorf("the verdict changed with one firewall impaired: %v", err)
	}
	onFW2 := waitTraffic(t, run, 20*time.Second, "100 echoes per flow through fw2", viaFirewall(c.Lab, before, 100, FW2))
	restore := time.Now()
	if err := c.Lab.Clear(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	waitTrack(t, c, FW1, "0")
	if err := c.WaitVRRPMaster(ctx, FW1, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitTraffic(t, run, 20*time.Second, "100 echoes per flow through fw1 again", viaFirewall(c.Lab, onFW2, 100, FW1))
	rep := stopTraffic(t, run)
	var hit, handover []time.Duration
	for _, f := range rep.Flows {
		for _, g := range f.Gaps {
			if g.Open {
				t.Errorf("flow %d did not resume: %+v", f.Flow, g)
			}
		}
		if slices.Contains(on1, f.Flow) {
			hit = append(hit, f.LongestGap)
		} else {
			handover = append(handover, f.LongestGap)
		}
	}
	t.Logf("fault → fw2 master %v; restore → fw1 master %v", moved.Sub(fault).Round(time.Millisecond), back.Sub(restore).Round(time.Millisecond))
	t.Logf("longest gap of flows on isp1 via fw1 (fault + handover): max %v; of the other flows (handovers only): max %v",
		percentile(hit, 100).Round(time.Millisecond), percentile(handover, 100).Round(time.Millisecond))
	t.Logf("connections: %d failed of %d", traffic.FailuresOf(rep.Conns).Failed, len(rep.Conns))
}

// demotedDuring explains a loss on the surviving link when a firewall
// demoted itself (VRRP) between from and to: during a cut of a link that
// every node sees, a node that sees it down before the verdict does counts
// as impaired, the gateway moves to the peer, which may still balance new
// connections onto the dead link.
func demotedDuring(t *testing.T, c *Cluster, from, to time.Time) string {
	t.Helper()
	for _, fw := range []string{FW1, FW2} {
		v, err := c.MetricSum(t.Context(), fw, "gwstated_last_demotion_timestamp_seconds")
		if err != nil {
			t.Log(err)
			continue
		}
		if at := UnixSeconds(v); at.After(from) && at.Before(to) {
			return fmt.Sprintf(" (%s demoted itself %v after the cut: the LAN gateway moved during a whole-link failure)", fw, at.Sub(from).Round(time.Millisecond))
		}
	}
	return ""
}
