package nftapply_test

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"gwstated/config"
	"gwstated/internal/netns"
	"gwstated/linkstate"
	"gwstated/nftapply"
)

const head = `
node: fw1
cluster:
  name: office
  gossip: {bind: 127.0.0.1:7946, insecure: true}
  etcd: {endpoints: [http://127.0.0.1:2379]}
dataplane: nft
`

var (
	// The ifstated recipe on Linux: eth0 is the LAN, eth1/eth2 the uplinks.
	yamlRecipe = head + `
lan: {interface: eth0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: eth1, gateway: 198.51.100.100}
  - {name: isp2, interface: eth2, gateway: 203.0.113.200}
sticky: [{name: https, proto: tcp, ports: [443]}]
nodes:
  fw1: {probe_source: {isp1: 198.51.100.198, isp2: 203.0.113.198}}
`
	yamlTiers = head + `
lan: {interface: eth0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: eth1, gateway: 198.51.100.100, tier: 1}
  - {name: isp2, interface: eth2, gateway: 203.0.113.200, tier: 1}
  - {name: lte, interface: wwan0, gateway: 192.0.2.1, tier: 2}
nodes:
  fw1: {}
`
	yamlSticky = head + `
lan: {interface: eth0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: eth1, gateway: 198.51.100.100}
  - {name: isp2, interface: eth2, gateway: 203.0.113.200}
sticky:
  - {name: https, proto: tcp, ports: [8443, 443], link: isp2}
  - {name: voip, proto: udp, ports: [5060]}
nodes:
  fw1: {}
`
	yamlNatTo = head + `
lan: {interface: eth0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: eth1, gateway: 198.51.100.100, nat_to: 198.51.100.1}
  - {name: isp2, interface: eth2, gateway: 203.0.113.200, nat_to: 203.0.113.1}
nodes:
  fw1: {}
`
	yamlIPv6 = head + `
lan: {interface: eth0, network: 2001:db8:100::/64}
links:
  - {name: isp1, interface: eth1, gateway: 2001:db8:1::1}
  - {name: isp2, interface: eth2, gateway: 2001:db8:2::1, nat_to: 2001:db8:2::100}
sticky: [{name: https, proto: tcp, ports: [443]}]
nodes:
  fw1: {probe_source: {isp1: 2001:db8:1::11}}
`
)

func parseConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "fw1")
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return cfg
}

// verdict builds a verdict by hand: links in up are Up, every other
// configured link Down; active lists the links carrying balanced traffic.
func verdict(cfg *config.Config, up, active []string) linkstate.Verdict {
	v := linkstate.Verdict{Seq: 7, Links: map[string]linkstate.LinkVerdict{}, Active: active}
	for _, l := range cfg.Links {
		st := linkstate.Down
		if slices.Contains(up, l.Name) {
			st = linkstate.Up
		}
		v.Links[l.Name] = linkstate.LinkVerdict{State: st, Observed: st}
	}
	v.AllDown = len(up) == 0
	return v
}

// newNetns creates an empty network namespace (netns.Scratch: named like
// the lab's, deleted when the test ends; not root → skip, or fail under
// GWSTATED_REQUIRE_LAB=1).
func newNetns(t testing.TB) string {
	t.Helper()
	return netns.Scratch(t, "nft")
}

func mustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNetns runs name args inside ns.
func inNetns(t testing.TB, ns, name string, args ...string) string {
	t.Helper()
	return mustRun(t, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// netlinkKiller opens the in-process conntrack killer for ns (the
// agent's); failing to open it fails the test.
func netlinkKiller(t testing.TB, ns string) *nftapply.NetlinkKiller {
	t.Helper()
	k, err := nftapply.OpenNetlinkKiller(ns)
	if err != nil {
		t.Fatalf("OpenNetlinkKiller(%s): %v", ns, err)
	}
	return k
}

// netlinkRoutes opens the in-process route and rule writer for ns (the
// agent's); failing to open it fails the test.
func netlinkRoutes(t testing.TB, ns string) *nftapply.NetlinkRouteWriter {
	t.Helper()
	w, err := nftapply.OpenNetlinkRouteWriter(ns)
	if err != nil {
		t.Fatalf("OpenNetlinkRouteWriter(%s): %v", ns, err)
	}
	return w
}

// kernelOptions are cfg's options with the agent's in-process writers
// (ctnetlink and rtnetlink, in ns).
func kernelOptions(t testing.TB, cfg *config.Config, ns string) nftapply.Options {
	t.Helper()
	o := nftapply.OptionsFromConfig(cfg, nil)
	o.Killer = netlinkKiller(t, ns)
	o.Routes = netlinkRoutes(t, ns)
	return o
}
