package nftapply

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"gwstated/internal/netns"
)

// routeNetns is a namespace with eth1 198.51.100.198/24 and eth2
// 203.0.113.198/24 (and their IPv6 twins) up.
func routeNetns(t *testing.T) string {
	ns := netns.Scratch(t, "rw")
	for _, l := range []struct{ dev, peer, v4, v6 string }{
		{"eth1", "isp1", "198.51.100.198/24", "2001:db8:1::11/64"},
		{"eth2", "isp2", "203.0.113.198/24", "2001:db8:2::11/64"},
	} {
		netns.IP(t, "-n", ns, "link", "add", l.dev, "type", "veth", "peer", "name", l.peer)
		netns.IP(t, "-n", ns, "link", "set", l.dev, "up")
		netns.IP(t, "-n", ns, "link", "set", l.peer, "up")
		netns.IP(t, "-n", ns, "addr", "add", l.v4, "dev", l.dev)
		netns.IP(t, "-n", ns, "-6", "addr", "add", l.v6, "dev", l.dev, "nodad")
	}
	return ns
}

// TestRouteWritersAgree: the same ops through `ip -force -batch` and
// through rtnetlink in-process, each in a namespace of its own, fail at the
// same positions (a route on a missing device, a rule deleted that is not
// there, a rule added twice), every other op takes effect, and the kernel
// ends in the same state as ip reads it back. In both families.
func TestRouteWritersAgree(t *testing.T) {
	for _, fam := range []int{4, 6} {
		gw1, gw2, src := "198.51.100.100", "203.0.113.200", "198.51.100.198"
		if fam == 6 {
			gw1, gw2, src = "2001:db8:1::1", "2001:db8:2::1", "2001:db8:1::11"
		}
		rt := func(table uint32, gw, dev string) *Route {
			return &Route{Table: table, Gateway: netip.MustParseAddr(gw), Dev: dev}
		}
		rules := []Rule{
			{Priority: 101, Fwmark: 0x100, Table: 100},
			{Priority: 100, SuppressMain: true},
			{Priority: 105, From: netip.MustParseAddr(src), Table: 100},
			{Priority: 102, Fwmark: 0x101, Table: 101},
			{Priority: 106, From: netip.MustParseAddr(src), Table: 100},
		}
		ops := []ipOp{
			{route: rt(100, gw1, "eth1")},
			{route: rt(101, gw2, "eth9")}, // no such device
			{route: rt(0, gw2, "eth2")},   // main
			{rule: &rules[0]},
			{rule: &rules[1]},
			{rule: &rules[2]},
			{rule: &rules[3], del: true}, // not there
			{rule: &rules[0], del: true},
			{rule: &rules[2]}, // added twice
			{rule: &rules[4]},
			{route: rt(100, gw1, "eth1")}, // replaced by itself
		}
		for i, o := range ops {
			if o.route != nil {
				ops[i].line = "route replace " + o.route.String()
			} else if o.del {
				ops[i].line = "rule del " + ruleKey(*o.rule)
			} else {
				ops[i].line = "rule add " + ruleKey(*o.rule)
			}
		}
		type state struct {
			failed []int
			rules  []Rule
			routes map[uint32]Route
		}
		run := func(w func(ns string) RouteWriter, wantProcs int) (state, string) {
			ns := routeNetns(t)
			failed, procs, err := w(ns).writeOps(t.Context(), fam, ops)
			if err != nil {
				t.Fatalf("ipv%d: writeOps: %v", fam, err)
			}
			if procs != wantProcs {
				t.Errorf("ipv%d: %d processes, want %d", fam, procs, wantProcs)
			}
			r := ExecRunner{Netns: ns}
			k, err := ReadKernel(t.Context(), r, Plan{TableName: "gwstated", Family: fam,
				Links: []LinkPlan{{Name: "isp1", Table: 100}, {Name: "isp2", Table: 101}}}, 100, 110)
			if err != nil {
				t.Fatal(err)
			}
			k.Routes[0] = k.DefaultRoute
			s := state{failed: slices.Sorted(maps.Keys(failed)), rules: k.Rules, routes: k.Routes}
			return s, ns
		}
		ex, _ := run(func(ns string) RouteWriter { return ExecRouteWriter{R: ExecRunner{Netns: ns}} }, 1)
		nl, _ := run(func(ns string) RouteWriter {
			w, err := OpenNetlinkRouteWriter(ns)
			if err != nil {
				t.Fatal(err)
			}
			return w
		}, 0)
		if want := []int{2, 7, 9}; !slices.Equal(ex.failed, want) || !slices.Equal(nl.failed, want) {
			t.Errorf("ipv%d: failed ops: ip %v, netlink %v; want %v", fam, ex.failed, nl.failed, want)
		}
		keys := func(rs []Rule) []string {
			var out []string
			for _, r := range rs {
				out = append(out, ruleKey(r))
			}
			slices.Sort(out)
			return out
		}
		wantRules := keys([]Rule{rules[1], rules[2], rules[4]})
		if !slices.Equal(keys(ex.rules), wantRules) || !slices.Equal(keys(nl.rules), wantRules) {
			t.Errorf("ipv%d: rules: ip %q, netlink %q; want %q", fam, keys(ex.rules), keys(nl.rules), wantRules)
		}
		wantRoutes := map[uint32]Route{100: *rt(100, gw1, "eth1"), 0: *rt(0, gw2, "eth2")}
		if !maps.EqualFunc(ex.routes, wantRoutes, sameRoute) || !maps.EqualFunc(nl.routes, wantRoutes, sameRoute) {
			t.Errorf("ipv%d: routes: ip %v, netlink %v; want %v", fam, ex.routes, nl.routes, wantRoutes)
		}
	}
}
