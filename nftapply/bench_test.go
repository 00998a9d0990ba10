package nftapply_test

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"gwstated/config"
	"gwstated/nftapply"
)

// linksConfig is a config with n links on eth1..ethN, gateways 10.i.0.1.
func linksConfig(t testing.TB, n int) *config.Config {
	var b strings.Builder
	b.WriteString(head + "lan: {interface: eth0, network: 192.168.0.0/24}\n")
	b.WriteString("sticky: [{name: https, proto: tcp, ports: [443, 8443]}]\nlinks:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - {name: isp%d, interface: eth%d, gateway: 10.%d.0.1}\n", i, i, i)
	}
	b.WriteString("nodes: {fw1: {probe_source: {isp1: 10.1.0.2}}}\n")
	return parseConfig(t, b.String())
}

func linkNames(cfg *config.Config) []string {
	var out []string
	for _, l := range cfg.Links {
		out = append(out, l.Name)
	}
	return out
}

// BenchmarkRender: config + verdict → Plan, for 2, 8 and 64 links.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{2, 8, 64} {
		b.Run(fmt.Sprintf("links=%d", n), func(b *testing.B) {
			cfg := linksConfig(b, n)
			all := linkNames(cfg)
			v := verdict(cfg, all[1:], all[1:])
			b.ReportAllocs()
			for b.Loop() {
				if _, err := nftapply.Render(cfg, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApply: verdict → kernel in a namespace, alternating "all up"
// and "the first link down" (a failure and a recovery), for 2 and 8
// links, with the table swapped and the routes, rules and conntrack
// deletions written in-process over netlink (writes=netlink, the agent's)
// or by nft -f, ip -batch and conntrack(8) (writes=exec, the fallback). The namespace has no conntrack
// entry: the deletion is a flush that finds nothing. Reports p50/p99
// of one transition, p50/p99 of the failures alone (fail-p50-ms: the
// packet path of a cut), the kernel writes and the processes per
// transition.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{2, 8} {
		for _, w := range []string{"netlink", "exec"} {
			b.Run(fmt.Sprintf("links=%d/writes=%s", n, w), func(b *testing.B) { benchmarkApply(b, n, w) })
		}
	}
}

func benchmarkApply(b *testing.B, n int, writer string) {
	ns := newNetns(b)
	for i := 0; i <= n; i++ {
		mustRun(b, "ip", "-n", ns, "link", "add", fmt.Sprintf("eth%d", i), "type", "veth", "peer", "name", fmt.Sprintf("p%d", i))
		mustRun(b, "ip", "-n", ns, "link", "set", fmt.Sprintf("eth%d", i), "up")
		mustRun(b, "ip", "-n", ns, "link", "set", fmt.Sprintf("p%d", i), "up")
		if i > 0 {
			mustRun(b, "ip", "-n", ns, "addr", "add", fmt.Sprintf("10.%d.0.2/24", i), "dev", fmt.Sprintf("eth%d", i))
		}
	}
	cfg := linksConfig(b, n)
	plans := upDownPlans(b, cfg)
	ctx := b.Context()
	opts := nftapply.OptionsFromConfig(cfg, nil)
	if writer == "netlink" {
		opts.NFTables = nftapply.NetlinkConn{Netns: ns}
		opts.Killer = netlinkKiller(b, ns)
		opts.Routes = netlinkRoutes(b, ns)
	}
	a := nftapply.NewApplier(nftapply.ExecRunner{Netns: ns}, opts)
	if _, err := a.Apply(ctx, plans[0], 0); err != nil {
		b.Fatal(err)
	}
	var lat, fail []time.Duration
	writes, procs := 0, 0
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		res, err := a.Apply(ctx, plans[i%2], uint64(i))
		d := time.Since(start)
		lat = append(lat, d)
		if i%2 == 1 {
			fail = append(fail, d)
		}
		if err != nil {
			b.Fatal(err)
		}
		writes += res.Writes()
		procs += res.Commands
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	if len(fail) > 0 {
		slices.Sort(fail)
		b.ReportMetric(float64(fail[len(fail)/2].Microseconds())/1000, "fail-p50-ms")
		b.ReportMetric(float64(fail[len(fail)*99/100].Microseconds())/1000, "fail-p99-ms")
	}
	b.ReportMetric(float64(writes)/float64(len(lat)), "writes/transition")
	b.ReportMetric(float64(procs)/float64(len(lat)), "procs/transition")
}

// BenchmarkExecBaseline is the cost of one command through the runner the
// Apply benchmark uses (`ip netns exec NS true`): Apply's latency is about
// (commands per transition) × this, so compare the two from the same run.
func BenchmarkExecBaseline(b *testing.B) {
	ns := newNetns(b)
	r := nftapply.ExecRunner{Netns: ns}
	for b.Loop() {
		if _, err := r.Run(b.Context(), nil, "true"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSwap is the netlink rule swap alone (encode, open a socket in
// the namespace, one batch, its acknowledgements), alternating "all up"
// and "the first link down", for 2 and 8 links.
func BenchmarkSwap(b *testing.B) {
	for _, n := range []int{2, 8} {
		b.Run(fmt.Sprintf("links=%d", n), func(b *testing.B) {
			ns := newNetns(b)
			plans := upDownPlans(b, linksConfig(b, n))
			cmd := exec.CommandContext(b.Context(), "ip", "netns", "exec", ns, "nft", "-f", "-")
			cmd.Stdin = strings.NewReader(nftapply.Script(plans[0]))
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("nft -f: %v: %s", err, out)
			}
			nl := nftapply.NetlinkConn{Netns: ns}
			var lat []time.Duration
			i := 0
			for b.Loop() {
				i++
				from, to := plans[(i+1)%2], plans[i%2]
				start := time.Now()
				chains, ok := nftapply.SwapChains(from.Table, to)
				if !ok {
					b.Fatal("no swap")
				}
				batch, err := nftapply.SwapBatch(to, chains)
				if err != nil {
					b.Fatal(err)
				}
				if err := nl.Commit(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// upDownPlans renders cfg with every link up and with the first one down:
// the two plans a benchmark alternates between (a failure, a recovery).
func upDownPlans(b *testing.B, cfg *config.Config) []nftapply.Plan {
	b.Helper()
	all := linkNames(cfg)
	plans := make([]nftapply.Plan, 2)
	for k, up := range [][]string{all, all[1:]} {
		p, err := nftapply.Render(cfg, verdict(cfg, up, up))
		if err != nil {
			b.Fatal(err)
		}
		plans[k] = p
	}
	return plans
}
