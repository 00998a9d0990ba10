package nftapply_test

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gwstated/config"
	"gwstated/internal/testkit"
	"gwstated/nftapply"
)

// trafficLab is three namespaces around a firewall namespace: a LAN host
// (192.168.0.10, default via the firewall), and two ISP gateways that both
// hold the "server" 192.0.2.53 and have no route back to the LAN, so only
// traffic the firewall NATed out of their link gets an answer.
type trafficLab struct {
	fw, lan, isp1, isp2 string
}

func newTrafficLab(t *testing.T) trafficLab {
	l := trafficLab{fw: newNetns(t), lan: newNetns(t), isp1: newNetns(t), isp2: newNetns(t)}
	link := func(ns, dev, peerNS, peerDev, addr, peerAddr string) {
		mustRun(t, "ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", peerDev, "netns", peerNS)
		mustRun(t, "ip", "-n", ns, "addr", "add", addr, "dev", dev)
		mustRun(t, "ip", "-n", peerNS, "addr", "add", peerAddr, "dev", peerDev)
		mustRun(t, "ip", "-n", ns, "link", "set", dev, "up")
		mustRun(t, "ip", "-n", peerNS, "link", "set", peerDev, "up")
	}
	link(l.fw, "eth0", l.lan, "lan0", "192.168.0.1/24", "192.168.0.10/24")
	link(l.fw, "eth1", l.isp1, "up0", "198.51.100.198/24", "198.51.100.100/24")
	link(l.fw, "eth2", l.isp2, "up0", "203.0.113.198/24", "203.0.113.200/24")
	mustRun(t, "ip", "-n", l.lan, "route", "add", "default", "via", "192.168.0.1")
	inNetns(t, l.fw, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	for _, isp := range []string{l.isp1, l.isp2} {
		mustRun(t, "ip", "-n", isp, "addr", "add", "192.0.2.53/32", "dev", "lo")
		inNetns(t, isp, "nft", "add", "table", "inet", "count")
		inNetns(t, isp, "nft", "add", "chain", "inet", "count", "in", "{ type filter hook input priority 0; }")
		inNetns(t, isp, "nft", "add", "rule", "inet", "count", "in", "ip", "daddr", "192.0.2.53", "icmp", "type", "echo-request", "counter")
	}
	return l
}

var packetsRE = regexp.MustCompile(`counter packets (\d+)`)

// seen is the number of echo requests an ISP's server got.
func seen(t *testing.T, ns string) int {
	t.Helper()
	m := packetsRE.FindStringSubmatch(inNetns(t, ns, "nft", "list", "chain", "inet", "count", "in"))
	if m == nil {
		t.Fatal("no counter in the ISP namespace")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// pings sends n single pings (each its own ICMP id, so its own connection)
// from the LAN host and returns how many were answered.
func pings(t *testing.T, lan string, n int) int {
	t.Helper()
	ok := 0
	for range n {
		if exec.Command("ip", "netns", "exec", lan, "ping", "-n", "-q", "-c", "1", "-W", "1", "192.0.2.53").Run() == nil {
			ok++
		}
	}
	return ok
}

// TestTrafficBalancesAndFailsOver sends real packets through the applied
// table: new connections alternate between the links and are NATed (they
// are answered); with isp1 down every new connection leaves by isp2.
func TestTrafficBalancesAndFailsOver(t *testing.T) { bothModes(t, testTrafficBalancesAndFailsOver) }

func testTrafficBalancesAndFailsOver(t *testing.T, swap bool) {
	l := newTrafficLab(t)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	a := trafficApplier(t, l, cfg, swap)
	apply := func(up ...string) {
		t.Helper()
		p, err := nftapply.Render(cfg, verdict(cfg, up, up))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Apply(ctx, p, 1); err != nil {
			t.Fatal(err)
		}
	}
	apply("isp1", "isp2")
	const n = 20
	if ok := pings(t, l.lan, n); ok != n {
		t.Errorf("both up: %d of %d pings answered", ok, n)
	}
	s1, s2 := seen(t, l.isp1), seen(t, l.isp2)
	if s1 != n/2 || s2 != n/2 {
		t.Errorf("both up: isp1 saw %d, isp2 saw %d; round-robin wants %d each", s1, s2, n/2)
	}
	apply("isp2")
	if ok := pings(t, l.lan, n); ok != n {
		t.Errorf("isp1 down: %d of %d pings answered", ok, n)
	}
	if d1, d2 := seen(t, l.isp1)-s1, seen(t, l.isp2)-s2; d1 != 0 || d2 != n {
		t.Errorf("isp1 down: isp1 saw %d more, isp2 %d more; want 0 and %d", d1, d2, n)
	}
}

// TestTrafficHitless: a flow on a link that stays up loses no packet
// while the other link fails, its conntrack entries are deleted and the
// table, rules and default route change under it.
func TestTrafficHitless(t *testing.T) { bothModes(t, testTrafficHitless) }

func testTrafficHitless(t *testing.T, swap bool) {
	l := newTrafficLab(t)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	a := trafficApplier(t, l, cfg, swap)
	apply := func(up ...string) nftapply.Result {
		t.Helper()
		p, err := nftapply.Render(cfg, verdict(cfg, up, up))
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Apply(ctx, p, 1)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	apply("isp1", "isp2")
	// One flow (one ICMP id): 100 echo requests, 20 ms apart.
	ping := exec.CommandContext(ctx, "ip", "netns", "exec", l.lan, "ping", "-n", "-q", "-i", "0.02", "-c", "100", "-W", "1", "192.0.2.53")
	var out strings.Builder
	ping.Stdout = &out
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	// Which link carries it: the first ISP whose server counts requests.
	carrier, other := "", ""
	testkit.WaitFor(t, 5*time.Second, "the flow reaching an ISP", func() bool {
		switch {
		case seen(t, l.isp1) > 2:
			carrier, other = "isp1", "isp2"
		case seen(t, l.isp2) > 2:
			carrier, other = "isp2", "isp1"
		}
		return carrier != ""
	})
	res := apply(carrier) // the other link fails under the flow
	wantKilled := uint32(0x100)
	if other == "isp2" {
		wantKilled = 0x101
	}
	if !res.Table || res.Swapped != swap || len(res.Killed) != 1 || res.Killed[0] != wantKilled {
		t.Errorf("the transition did not replace the table and delete %s's entries: %+v", other, res)
	}
	if err := ping.Wait(); err != nil {
		t.Errorf("ping: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "100 packets transmitted, 100 received") {
		t.Errorf("the flow on %s lost packets while %s failed:\n%s", carrier, other, out.String())
	}
	if n := seen(t, otherNS(l, other)); n != 0 {
		t.Errorf("%s's server saw %d requests of a flow that was never on it", other, n)
	}
}

func otherNS(l trafficLab, isp string) string {
	if isp == "isp1" {
		return l.isp1
	}
	return l.isp2
}

// TestPrevalidateHitless: nft -c of whole-table replacements (what
// Prevalidate runs in the background, at any time) never disturbs a flow,
// even one whose packets would leave by the wrong link without the table's
// mark: a flow on isp2 while the main default route points at isp1.
func TestPrevalidateHitless(t *testing.T) {
	l := newTrafficLab(t)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	a := nftapply.NewApplier(nftapply.ExecRunner{Netns: l.fw}, kernelOptions(t, cfg, l.fw))
	plan := func(up ...string) nftapply.Plan {
		t.Helper()
		p, err := nftapply.Render(cfg, verdict(cfg, up, up))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := a.Apply(ctx, plan("isp2"), 1); err != nil {
		t.Fatal(err)
	}
	ping := exec.CommandContext(ctx, "ip", "netns", "exec", l.lan, "ping", "-n", "-q", "-i", "0.01", "-c", "300", "-W", "1", "192.0.2.53")
	var out strings.Builder
	ping.Stdout = &out
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "the flow reaching isp2", func() bool { return seen(t, l.isp2) > 2 })
	if _, err := a.Apply(ctx, plan("isp1", "isp2"), 2); err != nil { // main default → isp1
		t.Fatal(err)
	}
	checks := 0
	for ctx.Err() == nil && seen(t, l.isp2) < 280 {
		b := nftapply.NewApplier(nftapply.ExecRunner{Netns: l.fw}, kernelOptions(t, cfg, l.fw)) // empty cache
		if _, err := b.Prevalidate(ctx, []nftapply.Plan{plan("isp1"), plan("isp2"), plan()}); err != nil {
			t.Fatal(err)
		}
		checks++
	}
	if err := ping.Wait(); err != nil {
		t.Errorf("ping: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "300 packets transmitted, 300 received") {
		t.Errorf("the flow on isp2 lost packets during %d background checks:\n%s", checks, out.String())
	}
	if n := seen(t, l.isp1); n != 0 {
		t.Errorf("isp1's server saw %d requests of a flow on isp2 (unmarked while a check ran)", n)
	}
	t.Logf("%d background checks under the flow", checks)
}

// TestTrafficHitlessRecovery: a flow on isp2 loses no packet while isp1
// comes back (its route and rule go in, the table and the main default
// route change to isp1 under the flow), with the checks ahead running
// right after, as the agent runs them.
func TestTrafficHitlessRecovery(t *testing.T) { bothModes(t, testTrafficHitlessRecovery) }

func testTrafficHitlessRecovery(t *testing.T, swap bool) {
	l := newTrafficLab(t)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	a := trafficApplier(t, l, cfg, swap)
	plan := func(up ...string) nftapply.Plan {
		t.Helper()
		p, err := nftapply.Render(cfg, verdict(cfg, up, up))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i, up := range [][]string{{"isp1", "isp2"}, {"isp2"}} {
		if _, err := a.Apply(ctx, plan(up...), uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	ping := exec.CommandContext(ctx, "ip", "netns", "exec", l.lan, "ping", "-n", "-q", "-i", "0.01", "-c", "200", "-W", "1", "192.0.2.53")
	var out strings.Builder
	ping.Stdout = &out
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "the flow reaching isp2", func() bool { return seen(t, l.isp2) > 2 })
	for i := range 4 { // recover, fail, recover, fail under the same flow
		up := []string{"isp1", "isp2"}
		if i%2 == 1 {
			up = []string{"isp2"}
		}
		if _, err := a.Apply(ctx, plan(up...), uint64(3+i)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Prevalidate(ctx, []nftapply.Plan{plan("isp1"), plan("isp2"), plan()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ping.Wait(); err != nil {
		t.Errorf("ping: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "200 packets transmitted, 200 received") {
		t.Errorf("the flow on isp2 lost packets while isp1 came back and failed:\n%s", out.String())
	}
	if n := seen(t, l.isp1); n != 0 {
		t.Errorf("isp1's server saw %d requests of a flow on isp2", n)
	}
}

// bothModes runs a traffic test with the table loaded by nft -f and with
// the netlink rule swap.
func bothModes(t *testing.T, test func(*testing.T, bool)) {
	t.Run("nft-f", func(t *testing.T) { test(t, false) })
	t.Run("swap", func(t *testing.T) { test(t, true) })
}

// trafficApplier is an Applier for the lab's firewall, with the rule swap
// or without.
func trafficApplier(t testing.TB, l trafficLab, cfg *config.Config, swap bool) *nftapply.Applier {
	opts := kernelOptions(t, cfg, l.fw)
	if swap {
		opts.NFTables = nftapply.NetlinkConn{Netns: l.fw}
	}
	return nftapply.NewApplier(nftapply.ExecRunner{Netns: l.fw}, opts)
}
