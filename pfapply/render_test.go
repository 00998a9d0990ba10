package pfapply

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gwstated/config"
	"gwstated/linkstate"
)

// Test configurations, parsed with config.Parse so that defaults (anchor
// names, prefixes, pf.syntax) come from the one place that owns them.
const (
	// The PF FAQ / ifstated recipe network: two links, https sticky.
	yamlPFFAQ = `
node: fw1
cluster:
  name: office
  gossip: {bind: 127.0.0.1:7946, insecure: true}
  etcd: {endpoints: [http://127.0.0.1:2379]}
lan: {interface: dc0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: fxp0, gateway: 198.51.100.100}
  - {name: isp2, interface: fxp1, gateway: 203.0.113.200}
sticky: [{name: https, proto: tcp, ports: [443]}]
nodes:
  fw1: {}
`
	// Two tier-1 links and an LTE backup in tier 2.
	yamlTiers = `
node: fw1
cluster:
  name: office
  gossip: {bind: 127.0.0.1:7946, insecure: true}
  etcd: {endpoints: [http://127.0.0.1:2379]}
lan: {interface: dc0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: fxp0, gateway: 198.51.100.100, tier: 1}
  - {name: isp2, interface: fxp1, gateway: 203.0.113.200, tier: 1}
  - {name: lte, interface: umb0, gateway: 192.0.2.1, tier: 2}
sticky: [{name: https, proto: tcp, ports: [443, 8443]}]
nodes:
  fw1: {}
`
	// A CARP pair: NAT to the shared CARP addresses.
	yamlCARP = `
node: fw1
cluster:
  name: office
  gossip: {bind: 127.0.0.1:7946, insecure: true}
  etcd: {endpoints: [http://127.0.0.1:2379]}
lan: {interface: dc0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: fxp0, gateway: 198.51.100.100, nat_to: 198.51.100.10}
  - {name: isp2, interface: fxp1, gateway: 203.0.113.200, nat_to: 203.0.113.10}
sticky: [{name: https, proto: tcp, ports: [443]}]
nodes:
  fw1: {}
`
	// Sticky classes with a preferred link (and one without).
	yamlStickyPref = `
node: fw1
cluster:
  name: office
  gossip: {bind: 127.0.0.1:7946, insecure: true}
  etcd: {endpoints: [http://127.0.0.1:2379]}
lan: {interface: dc0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: fxp0, gateway: 198.51.100.100}
  - {name: isp2, interface: fxp1, gateway: 203.0.113.200}
sticky:
  - {name: https, proto: tcp, ports: [443], link: isp2}
  - {name: voip, proto: udp, ports: [5060]}
nodes:
  fw1: {}
`
	// IPv6 everywhere.
	yamlIPv6 = `
node: fw1
cluster:
  name: office
  gossip: {bind: 127.0.0.1:7946, insecure: true}
  etcd: {endpoints: [http://127.0.0.1:2379]}
lan: {interface: dc0, network: "2001:db8:0:1::/64"}
links:
  - {name: isp1, interface: fxp0, gateway: "2001:db8:100::1"}
  - {name: isp2, interface: fxp1, gateway: "2001:db8:200::1", nat_to: "2001:db8:200::10"}
sticky: [{name: https, proto: tcp, ports: [443]}]
nodes:
  fw1: {}
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

// withSyntax returns a copy of cfg rendering the given pf dialect.
func withSyntax(cfg *config.Config, syntax string) *config.Config {
	c := *cfg
	c.PF.Syntax = syntax
	return &c
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

func anchorByName(t *testing.T, rs Ruleset, name string) Anchor {
	t.Helper()
	for _, a := range rs.Anchors {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no anchor %q in %v", name, anchorNames(rs))
	return Anchor{}
}

func anchorNames(rs Ruleset) []string {
	var n []string
	for _, a := range rs.Anchors {
		n = append(n, a.Name)
	}
	return n
}

// ruleLines returns the rules of an anchor without comment lines.
func ruleLines(rules string) []string {
	var out []string
	for _, l := range strings.Split(rules, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// TestRenderContract checks docs/DESIGN.md's rendering contract table rule for
// rule (labels and comments aside).
func TestRenderContract(t *testing.T) {
	cfg := parseConfig(t, yamlPFFAQ)
	rs, err := Render(cfg, verdict(cfg, []string{"isp1", "isp2"}, []string{"isp1", "isp2"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name  string
		kind  AnchorKind
		link  string
		rules []string
	}{
		{"nat-isp1", KindNAT, "isp1", []string{`match out on fxp0 from 192.168.0.0/24 nat-to (fxp0) label "gwstated:isp1"`}},
		{"nat-isp2", KindNAT, "isp2", []string{`match out on fxp1 from 192.168.0.0/24 nat-to (fxp1) label "gwstated:isp2"`}},
		{"pass-isp1", KindPass, "isp1", []string{`pass out on fxp1 from (fxp0) route-to 198.51.100.100 label "gwstated:isp1"`}},
		{"pass-isp2", KindPass, "isp2", []string{`pass out on fxp0 from (fxp1) route-to 203.0.113.200 label "gwstated:isp2"`}},
		{"applications", KindBalance, "", []string{`pass in on dc0 proto tcp from 192.168.0.0/24 to port 443 route-to 198.51.100.100 label "gwstated:https"`}},
		{"loadbalance", KindBalance, "", []string{`pass in on dc0 from 192.168.0.0/24 route-to { 198.51.100.100 203.0.113.200 } round-robin label "gwstated:loadbalance"`}},
	}
	if len(rs.Anchors) != len(want) {
		t.Fatalf("anchors %v, want %d", anchorNames(rs), len(want))
	}
	for i, w := range want {
		a := rs.Anchors[i]
		if a.Name != w.name || a.Kind != w.kind || a.Link != w.link {
			t.Errorf("anchor %d = %s/%s/%s, want %s/%s/%s", i, a.Name, a.Kind, a.Link, w.name, w.kind, w.link)
		}
		if got := ruleLines(a.Rules); !slices.Equal(got, w.rules) {
			t.Errorf("%s rules:\n got %q\nwant %q", a.Name, got, w.rules)
		}
		if !strings.HasPrefix(a.Rules, "# gwstated") {
			t.Errorf("%s: no comment line at the top: %q", a.Name, a.Rules)
		}
	}
	if want := netip.MustParseAddr("198.51.100.100"); rs.DefaultRoute != want {
		t.Errorf("default route %v, want %v", rs.DefaultRoute, want)
	}
}

func TestRenderLegacyForms(t *testing.T) {
	cfg := withSyntax(parseConfig(t, yamlPFFAQ), "legacy")
	rs, err := Render(cfg, verdict(cfg, []string{"isp1", "isp2"}, []string{"isp1", "isp2"}))
	if err != nil {
		t.Fatal(err)
	}
	check := func(rs Ruleset, anchor, want string) {
		t.Helper()
		if got := ruleLines(anchorByName(t, rs, anchor).Rules); !slices.Equal(got, []string{want}) {
			t.Errorf("%s:\n got %q\nwant %q", anchor, got, want)
		}
	}
	check(rs, "loadbalance", `pass in on dc0 from 192.168.0.0/24 route-to { (fxp0 198.51.100.100), (fxp1 203.0.113.200) } round-robin label "gwstated:loadbalance"`)
	check(rs, "applications", `pass in on dc0 proto tcp from 192.168.0.0/24 to port 443 route-to (fxp0 198.51.100.100) label "gwstated:https"`)
	check(rs, "pass-isp1", `pass out on fxp1 from (fxp0) route-to (fxp0 198.51.100.100) label "gwstated:isp1"`)
	check(rs, "nat-isp2", `match out on fxp1 from 192.168.0.0/24 nat-to (fxp1) label "gwstated:isp2"`)

	one, err := Render(cfg, verdict(cfg, []string{"isp2"}, []string{"isp2"}))
	if err != nil {
		t.Fatal(err)
	}
	check(one, "loadbalance", `pass in on dc0 from 192.168.0.0/24 route-to (fxp1 203.0.113.200) label "gwstated:loadbalance"`)
}

// TestRenderLinkSets checks, for every combination of up links and active
// links of the three-link config, the invariants of the contract.
func TestRenderLinkSets(t *testing.T) {
	cfg := parseConfig(t, yamlTiers)
	names := []string{"isp1", "isp2", "lte"}
	gw := map[string]string{"isp1": "198.51.100.100", "isp2": "203.0.113.200", "lte": "192.0.2.1"}
	subsets := func() [][]string {
		var out [][]string
		for m := range 1 << len(names) {
			var s []string
			for i, n := range names {
				if m&(1<<i) != 0 {
					s = append(s, n)
				}
			}
			out = append(out, s)
		}
		return out
	}()
	for _, up := range subsets {
		for _, active := range subsets {
			rs, err := Render(cfg, verdict(cfg, up, active))
			if err != nil {
				t.Fatalf("up %v active %v: %v", up, active, err)
			}
			wantNames := []string{"nat-isp1", "nat-isp2", "nat-lte", "pass-isp1", "pass-isp2", "pass-lte", "applications", "loadbalance"}
			if got := anchorNames(rs); !slices.Equal(got, wantNames) {
				t.Fatalf("anchors %v, want %v", got, wantNames)
			}
			for _, n := range names {
				ready := slices.Contains(up, n) || slices.Contains(active, n)
				nat, pass := anchorByName(t, rs, "nat-"+n), anchorByName(t, rs, "pass-"+n)
				if got := len(ruleLines(nat.Rules)); (ready && got != 1) || (!ready && nat.Rules != "") {
					t.Errorf("up %v active %v: nat-%s has %q", up, active, n, nat.Rules)
				}
				if got := len(ruleLines(pass.Rules)); (ready && got != 2) || (!ready && pass.Rules != "") {
					t.Errorf("up %v active %v: pass-%s has %q", up, active, n, pass.Rules)
				}
			}
			lb := anchorByName(t, rs, "loadbalance").Rules
			apps := anchorByName(t, rs, "applications").Rules
			for _, n := range names {
				if got, want := strings.Contains(lb, gw[n]), slices.Contains(active, n); got != want {
					t.Errorf("up %v active %v: loadbalance mentions %s: %v, want %v\n%s", up, active, n, got, want, lb)
				}
			}
			if len(active) == 0 {
				if lb != "" || apps != "" || rs.DefaultRoute.IsValid() {
					t.Errorf("up %v, nothing active: loadbalance %q applications %q route %v", up, lb, apps, rs.DefaultRoute)
				}
				continue
			}
			first := ""
			for _, n := range names { // config order, not the verdict's order
				if slices.Contains(active, n) {
					first = n
					break
				}
			}
			if rs.DefaultRoute.String() != gw[first] {
				t.Errorf("active %v: default route %v, want %s", active, rs.DefaultRoute, gw[first])
			}
			if want := "route-to " + gw[first] + " "; !strings.Contains(apps, want) {
				t.Errorf("active %v: applications %q does not route to %s", active, apps, gw[first])
			}
			if got, want := strings.Contains(lb, "round-robin"), len(active) > 1; got != want {
				t.Errorf("active %v: round-robin pool %v, want %v: %s", active, got, want, lb)
			}
		}
	}
}

func TestRenderStickyPreferred(t *testing.T) {
	cfg := parseConfig(t, yamlStickyPref)
	tests := []struct {
		name       string
		up, active []string
		https      string // route-to target of the https class ("" no rule)
		voip       string
	}{
		{"both up: https pinned to its preferred isp2", []string{"isp1", "isp2"}, []string{"isp1", "isp2"}, "203.0.113.200", "198.51.100.100"},
		{"preferred down: first active link", []string{"isp1"}, []string{"isp1"}, "198.51.100.100", "198.51.100.100"},
		{"preferred up, other down", []string{"isp2"}, []string{"isp2"}, "203.0.113.200", "203.0.113.200"},
		{"all down, none", nil, nil, "", ""},
		{"all down, fail open: preferred is ready", nil, []string{"isp1", "isp2"}, "203.0.113.200", "198.51.100.100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := Render(cfg, verdict(cfg, tt.up, tt.active))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			if tt.https != "" {
				want = append(want, `pass in on dc0 proto tcp from 192.168.0.0/24 to port 443 route-to `+tt.https+` label "gwstated:https"`)
			}
			if tt.voip != "" {
				want = append(want, `pass in on dc0 proto udp from 192.168.0.0/24 to port 5060 route-to `+tt.voip+` label "gwstated:voip"`)
			}
			if got := ruleLines(anchorByName(t, rs, "applications").Rules); !slices.Equal(got, want) {
				t.Errorf("applications:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestRenderIPv6(t *testing.T) {
	cfg := parseConfig(t, yamlIPv6)
	rs, err := Render(cfg, verdict(cfg, []string{"isp1", "isp2"}, []string{"isp1", "isp2"}))
	if err != nil {
		t.Fatal(err)
	}
	for anchor, want := range map[string]string{
		"nat-isp1":     `match out on fxp0 from 2001:db8:0:1::/64 nat-to (fxp0) label "gwstated:isp1"`,
		"nat-isp2":     `match out on fxp1 from 2001:db8:0:1::/64 nat-to 2001:db8:200::10 label "gwstated:isp2"`,
		"pass-isp2":    `pass out on fxp0 from 2001:db8:200::10 route-to 2001:db8:200::1 label "gwstated:isp2"`,
		"loadbalance":  `pass in on dc0 from 2001:db8:0:1::/64 route-to { 2001:db8:100::1 2001:db8:200::1 } round-robin label "gwstated:loadbalance"`,
		"applications": `pass in on dc0 proto tcp from 2001:db8:0:1::/64 to port 443 route-to 2001:db8:100::1 label "gwstated:https"`,
	} {
		if got := ruleLines(anchorByName(t, rs, anchor).Rules); !slices.Equal(got, []string{want}) {
			t.Errorf("%s:\n got %q\nwant %q", anchor, got, want)
		}
	}
	if rs.DefaultRoute != netip.MustParseAddr("2001:db8:100::1") {
		t.Errorf("default route %v", rs.DefaultRoute)
	}
}

func TestRenderErrors(t *testing.T) {
	base := parseConfig(t, yamlPFFAQ)
	both := []string{"isp1", "isp2"}
	tests := []struct {
		name   string
		mutate func(c *config.Config)
		v      func(c *config.Config) linkstate.Verdict
		is     error
		msg    string
	}{
		{
			name: "verdict names an unknown link",
			v: func(c *config.Config) linkstate.Verdict {
				v := verdict(c, both, both)
				v.Links["isp3"] = linkstate.LinkVerdict{State: linkstate.Up}
				return v
			},
			is: ErrUnknownLink, msg: `"isp3" (configured links: isp1, isp2)`,
		},
		{
			name: "active names an unknown link",
			v:    func(c *config.Config) linkstate.Verdict { return verdict(c, both, []string{"isp1", "lte"}) },
			is:   ErrUnknownLink, msg: `"lte"`,
		},
		{
			name:   "gateway of the other address family",
			mutate: func(c *config.Config) { c.Links[1].Gateway = netip.MustParseAddr("2001:db8::1") },
			is:     ErrUnrenderable, msg: "links[1].gateway: 2001:db8::1 is IPv6 but lan.network is IPv4",
		},
		{
			name:   "nat_to of the other address family",
			mutate: func(c *config.Config) { c.Links[0].NatTo = netip.MustParseAddr("2001:db8::10") },
			is:     ErrUnrenderable, msg: "links[0].nat_to",
		},
		{
			name:   "interface smuggling pf syntax",
			mutate: func(c *config.Config) { c.Links[0].Interface = "fxp0 from any\npass in all" },
			is:     ErrUnrenderable, msg: "links[0].interface",
		},
		{
			name:   "interface with a pf modifier",
			mutate: func(c *config.Config) { c.LAN.Interface = "dc0:network" },
			is:     ErrUnrenderable, msg: "lan.interface",
		},
		{
			name:   "label too long for pf",
			mutate: func(c *config.Config) { c.Links[0].Name = strings.Repeat("a", 55) },
			v: func(c *config.Config) linkstate.Verdict {
				return verdict(c, nil, nil)
			},
			is: ErrUnrenderable, msg: "longer than 63 bytes",
		},
		{
			name:   "two anchors share a name",
			mutate: func(c *config.Config) { c.PF.NATPrefix = ""; c.Links[1].Name = c.PF.ApplicationsAnchor },
			v:      func(c *config.Config) linkstate.Verdict { return verdict(c, nil, nil) },
			is:     ErrUnrenderable, msg: "is also the",
		},
		{
			name:   "unknown pf syntax",
			mutate: func(c *config.Config) { c.PF.Syntax = "freebsd" },
			is:     ErrUnrenderable, msg: `pf.syntax: "freebsd"`,
		},
		{
			name:   "sticky port out of range",
			mutate: func(c *config.Config) { c.Sticky = []config.Sticky{{Name: "x", Proto: "tcp", Ports: []int{0}}} },
			is:     ErrUnrenderable, msg: "sticky[0].ports[0]",
		},
		{
			name: "sticky preferred link not configured",
			mutate: func(c *config.Config) {
				c.Sticky = []config.Sticky{{Name: "x", Proto: "tcp", Ports: []int{1}, Link: "isp9"}}
			},
			is: ErrUnrenderable, msg: "sticky[0].link",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *base
			c.Links = slices.Clone(base.Links)
			c.Sticky = slices.Clone(base.Sticky)
			if tt.mutate != nil {
				tt.mutate(&c)
			}
			v := verdict(&c, both, both)
			if tt.v != nil {
				v = tt.v(&c)
			}
			rs, err := Render(&c, v)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.msg)
			}
			if !reflect.DeepEqual(rs, Ruleset{}) {
				t.Errorf("a failed Render returned %+v", rs)
			}
		})
	}
	// Every problem is reported at once.
	c := *base
	c.Links = slices.Clone(base.Links)
	c.Links[1].Gateway = netip.MustParseAddr("2001:db8::1")
	c.LAN.Interface = "dc0 all"
	c.Sticky = []config.Sticky{{Name: "x", Proto: "icmp", Ports: []int{1}}}
	_, err := Render(&c, verdict(&c, both, both))
	for _, want := range []string{"links[1].gateway", "lan.interface", "sticky[0].proto"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("several problems: %v, want it to name %s", err, want)
		}
	}
	if _, err := Render(nil, linkstate.Verdict{}); !errors.Is(err, ErrUnrenderable) {
		t.Errorf("Render(nil) = %v", err)
	}
}

// TestRenderDeterministic: the same input gives the same output, whatever
// the order of the verdict's map and whatever its seq and time.
func TestRenderDeterministic(t *testing.T) {
	cfg := parseConfig(t, yamlTiers)
	v := verdict(cfg, []string{"isp1", "lte"}, []string{"isp1"})
	first, err := Render(cfg, v)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		v2 := verdict(cfg, []string{"isp1", "lte"}, []string{"isp1"}) // a fresh map each time
		v2.Seq = uint64(1000 + i)
		v2.Time = time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
		got, err := Render(parseConfig(t, yamlTiers), v2)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, first) {
			t.Fatalf("run %d differs:\n%+v\n%+v", i, got, first)
		}
	}
}

func TestHash(t *testing.T) {
	cfg := parseConfig(t, yamlPFFAQ)
	rs, err := Render(cfg, verdict(cfg, []string{"isp1", "isp2"}, []string{"isp1", "isp2"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Hash) != 64 || strings.Trim(rs.Hash, "0123456789abcdef") != "" {
		t.Fatalf("hash %q is not hex sha256", rs.Hash)
	}
	if got := RulesetHash(rs.Anchors, rs.DefaultRoute); got != rs.Hash {
		t.Fatalf("RulesetHash = %s, Render set %s", got, rs.Hash)
	}

	seen := map[string]string{rs.Hash: "original"}
	differ := func(what string, anchors []Anchor, route netip.Addr) {
		t.Helper()
		h := RulesetHash(anchors, route)
		if prev, dup := seen[h]; dup {
			t.Errorf("%s: hash equals that of %s", what, prev)
		}
		seen[h] = what
	}
	for i := range rs.Anchors {
		a := slices.Clone(rs.Anchors)
		a[i].Rules += "pass\n"
		differ("rules of "+a[i].Name+" changed", a, rs.DefaultRoute)
		a = slices.Clone(rs.Anchors)
		a[i].Name += "x"
		differ("name of "+rs.Anchors[i].Name+" changed", a, rs.DefaultRoute)
	}
	differ("no default route", rs.Anchors, netip.Addr{})
	differ("other default route", rs.Anchors, netip.MustParseAddr("203.0.113.200"))
	differ("one anchor less", rs.Anchors[1:], rs.DefaultRoute)
	// Length prefixes keep boundaries unambiguous.
	differ("ab|c", []Anchor{{Name: "ab", Rules: "c"}}, netip.Addr{})
	differ("a|bc", []Anchor{{Name: "a", Rules: "bc"}}, netip.Addr{})
	differ("a|b + empty", []Anchor{{Name: "a", Rules: "b"}, {}}, netip.Addr{})
	differ("a|b", []Anchor{{Name: "a", Rules: "b"}}, netip.Addr{})

	// A different verdict renders a different hash; Kind and Link are not
	// hashed (they follow from the name).
	other, err := Render(cfg, verdict(cfg, []string{"isp1"}, []string{"isp1"}))
	if err != nil {
		t.Fatal(err)
	}
	if other.Hash == rs.Hash {
		t.Error("noisp2 and allworking render the same hash")
	}
	a := slices.Clone(rs.Anchors)
	a[0].Kind, a[0].Link = KindPass, "other"
	if RulesetHash(a, rs.DefaultRoute) != rs.Hash {
		t.Error("hash depends on Kind/Link")
	}
}

func ExampleRender() {
	cfg, err := config.Parse([]byte(yamlPFFAQ), "fw1")
	if err != nil {
		panic(err)
	}
	v := linkstate.Verdict{
		Links: map[string]linkstate.LinkVerdict{
			"isp1": {State: linkstate.Down},
			"isp2": {State: linkstate.Up},
		},
		Active: []string{"isp2"},
	}
	rs, err := Render(cfg, v)
	if err != nil {
		panic(err)
	}
	for _, a := range rs.Anchors {
		fmt.Printf("%s: %q\n", a.Name, ruleLines(a.Rules))
	}
	fmt.Println("default route:", rs.DefaultRoute)
	// Output:
	// nat-isp1: []
	// nat-isp2: ["match out on fxp1 from 192.168.0.0/24 nat-to (fxp1) label \"gwstated:isp2\""]
	// pass-isp1: []
	// pass-isp2: ["pass out on fxp0 from (fxp1) route-to 203.0.113.200 label \"gwstated:isp2\""]
	// applications: ["pass in on dc0 proto tcp from 192.168.0.0/24 to port 443 route-to 203.0.113.200 label \"gwstated:https\""]
	// loadbalance: ["pass in on dc0 from 192.168.0.0/24 route-to 203.0.113.200 label \"gwstated:loadbalance\""]
	// default route: 203.0.113.200
}
