package nftapply_test

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"gwstated/config"
	"gwstated/nftapply"
)

// The netlink rule swap's oracle is nft itself: after a swap from table A
// to table B, `nft list table` must print byte for byte what it prints
// after `nft -f` of B's text.

// swapLab is a namespace where tables are loaded with nft -f and swapped
// by netlink, and a cache of what nft lists after nft -f of each text.
type swapLab struct {
	ns   string
	nl   nftapply.NetlinkConn
	want map[string]string // table text → listing after nft -f of it
}

func newSwapLab(t *testing.T) *swapLab {
	ns := newNetns(t)
	return &swapLab{ns: ns, nl: nftapply.NetlinkConn{Netns: ns}, want: map[string]string{}}
}

func (l *swapLab) load(t *testing.T, p nftapply.Plan) {
	t.Helper()
	cmd := fmt.Sprintf("ip netns exec %s nft -f -", l.ns)
	if out, err := runStdin(t, nftapply.Script(p), strings.Fields(cmd)...); err != nil {
		t.Fatalf("nft -f: %v: %s\n%s", err, out, p.Table)
	}
}

func (l *swapLab) list(t *testing.T, name string) string {
	t.Helper()
	return inNetns(t, l.ns, "nft", "list", "table", "inet", name)
}

// listingOf is what nft lists after nft -f of p (loaded here, then the
// namespace holds p).
func (l *swapLab) listingOf(t *testing.T, p nftapply.Plan) string {
	t.Helper()
	if s, ok := l.want[p.Table]; ok {
		return s
	}
	l.load(t, p)
	s := l.list(t, p.TableName)
	l.want[p.Table] = s
	return s
}

// swap swaps the namespace's table from a to b by netlink and checks the
// listing against nft -f of b.
func (l *swapLab) swap(t *testing.T, what string, a, b nftapply.Plan) {
	t.Helper()
	chains, ok := nftapply.SwapChains(a.Table, b)
	if a.Table == b.Table {
		if ok {
			t.Errorf("%s: same table, swap of %v", what, chains)
		}
		return
	}
	if !ok {
		t.Fatalf("%s: no rule swap between tables of the same skeleton:\n%s\n%s", what, a.Table, b.Table)
	}
	batch, err := nftapply.SwapBatch(b, chains)
	if err != nil {
		t.Fatalf("%s: encode: %v", what, err)
	}
	if err := l.nl.Commit(t.Context(), batch); err != nil {
		t.Fatalf("%s: swap %v refused: %v\n%s", what, chains, err, b.Table)
	}
	got := l.list(t, b.TableName)
	if want := l.want[b.Table]; got != want {
		t.Errorf("%s: after the swap of %v nft lists\n%s\nafter nft -f of the same table it lists\n%s", what, chains, got, want)
	}
}

// TestSwapGolden: from every golden table of a configuration to every
// other of the same configuration, and back.
func TestSwapGolden(t *testing.T) {
	l := newSwapLab(t)
	byYAML := map[string][]nftapply.Plan{}
	var order []string
	for _, c := range goldenCases() {
		p := renderCase(t, c)
		if _, ok := byYAML[c.yaml]; !ok {
			order = append(order, c.yaml)
		}
		byYAML[c.yaml] = append(byYAML[c.yaml], p)
		l.listingOf(t, p)
	}
	n := 0
	for _, y := range order {
		plans := byYAML[y]
		for i, a := range plans {
			for j, b := range plans {
				if i == j {
					continue
				}
				l.load(t, a)
				l.swap(t, fmt.Sprintf("golden %d→%d", i, j), a, b)
				l.swap(t, fmt.Sprintf("golden %d→%d→%d", i, j, i), b, a)
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no golden transitions")
	}
}

// genConfig is a configuration of n links with every rule form Render
// writes: tiers, sticky classes on one port, a port set, a run of ports,
// tcp and udp, a preferred link, nat_to on every third link, IPv4 or
// IPv6, a LAN prefix on or off a byte boundary.
func genConfig(t *testing.T, n int, v6 bool, allDown string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString(head)
	if v6 {
		b.WriteString("lan: {interface: lan-br0, network: 2001:db8:100::/60}\n")
	} else {
		b.WriteString("lan: {interface: lan-br0, network: 192.168.16.0/20}\n")
	}
	b.WriteString("links:\n")
	for i := 1; i <= n; i++ {
		gw, nat := fmt.Sprintf("10.%d.0.1", i), fmt.Sprintf("10.%d.0.9", i)
		if v6 {
			gw, nat = fmt.Sprintf("2001:db8:%d::1", i), fmt.Sprintf("2001:db8:%d::9", i)
		}
		fmt.Fprintf(&b, "  - {name: wan%d, interface: enp%ds0.%d, gateway: %s, tier: %d", i, i, 100+i, gw, 1+(i-1)/3)
		if i%3 == 0 {
			fmt.Fprintf(&b, ", nat_to: %s", nat)
		}
		b.WriteString("}\n")
	}
	b.WriteString("sticky:\n")
	b.WriteString("  - {name: https, proto: tcp, ports: [443]}\n")
	fmt.Fprintf(&b, "  - {name: sip, proto: udp, ports: [5062, 5060, 5061], link: wan%d}\n", n)
	b.WriteString("  - {name: web-alt, proto: tcp, ports: [8443, 80, 8080]}\n")
	b.WriteString("  - {name: dns, proto: udp, ports: [53]}\n")
	b.WriteString("nodes:\n  fw1: {}\n")
	cfg := parseConfig(t, b.String())
	cfg.AllDown = allDown
	return cfg
}

func renderUp(t *testing.T, cfg *config.Config, up []string) nftapply.Plan {
	t.Helper()
	p, err := nftapply.Render(cfg, cfg.VerdictUp(up, time.Unix(1e9, 0)))
	if err != nil {
		t.Fatalf("render %v: %v", up, err)
	}
	return p
}

// upOf is the links of state (bit i: link i up).
func upOf(cfg *config.Config, state int) []string {
	var up []string
	for i, l := range cfg.Links {
		if state&(1<<i) != 0 {
			up = append(up, l.Name)
		}
	}
	return up
}

// TestSwapGenerated: for 2, 3, 4, 5 and 8 links, IPv4 and IPv6 (the three
// all_down policies with 2 and 3 links, none above), every single-link
// change (up or down) from every state — all states up to 4 links, a
// fixed sample of 8 states above — is swapped there and back and compared
// with nft's own listing.
func TestSwapGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("hundreds of nft runs")
	}
	l := newSwapLab(t)
	rng := rand.New(rand.NewPCG(12, 34))
	for _, n := range []int{2, 3, 4, 5, 8} {
		for _, v6 := range []bool{false, true} {
			for _, allDown := range []string{"none", "all", "keep"} {
				if n > 3 && allDown != "none" {
					continue // the policies only change the all-down states: covered with 2 and 3 links
				}
				cfg := genConfig(t, n, v6, allDown)
				states := make([]int, 1<<n)
				for s := range states {
					states[s] = s
				}
				if n > 4 {
					states = []int{0, 1<<n - 1}
					for range 6 {
						states = append(states, rng.IntN(1<<n))
					}
				}
				for _, s := range states {
					a := renderUp(t, cfg, upOf(cfg, s))
					for i := range n {
						b := renderUp(t, cfg, upOf(cfg, s^(1<<i)))
						l.listingOf(t, b)
					}
					l.listingOf(t, a) // the namespace now holds a, loaded by nft -f
					for i := range n {
						b := renderUp(t, cfg, upOf(cfg, s^(1<<i)))
						what := fmt.Sprintf("links=%d v6=%v all_down=%s state %0*b flip %s", n, v6, allDown, n, s, cfg.Links[i].Name)
						l.swap(t, what, a, b)
						l.swap(t, what+" and back", b, a)
					}
					if t.Failed() {
						return
					}
				}
			}
		}
	}
}

// TestSwapSkeletonChange: a table that differs in more than rules (a
// chain more, another comment, no table at all) is not swapped.
func TestSwapSkeletonChange(t *testing.T) {
	cfg := parseConfig(t, yamlRecipe)
	a := renderUp(t, cfg, []string{"isp1", "isp2"})
	b := renderUp(t, cfg, []string{"isp2"})
	if chains, ok := nftapply.SwapChains(a.Table, b); !ok || !slices.Equal(chains, []string{"lan", "postrouting"}) {
		t.Errorf("recipe isp1 down: swap %v %v, want [lan postrouting]", chains, ok)
	}
	for what, old := range map[string]string{
		"no table":      "",
		"extra chain":   strings.Replace(a.Table, "\tchain lan {", "\tchain extra {\n\t}\n\n\tchain lan {", 1),
		"other comment": strings.Replace(a.Table, nftapply.TableComment, "hand-made", 1),
		"other policy":  strings.Replace(a.Table, "srcnat; policy accept;", "srcnat; policy drop;", 1),
		"other type":    strings.Replace(a.Table, "type filter hook prerouting priority mangle", "type filter hook prerouting priority raw", 1),
	} {
		if chains, ok := nftapply.SwapChains(old, b); ok {
			t.Errorf("%s: swap of %v, want nft -f", what, chains)
		}
	}
	hand := b
	hand.Table = strings.Replace(b.Table, "masquerade", "masquerade random", 1)
	if _, ok := nftapply.SwapChains(a.Table, hand); ok {
		t.Error("a Plan whose text is not its rules' is swapped")
	}
	var fromJSON nftapply.Plan
	fromJSON.TableName, fromJSON.Table = b.TableName, b.Table
	if _, ok := nftapply.SwapChains(a.Table, fromJSON); ok {
		t.Error("a Plan without rules (not from Render) is swapped")
	}
}

func runStdin(t *testing.T, stdin string, argv ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd.CombinedOutput()
}
