package nftapply_test

// Golden files for Render: the nft table exactly as `nft list table`
// prints it, then the routes, rules, default route and hash. Every table
// of every case goes through the real `nft -c -f` and is loaded into a
// throwaway network namespace, where `nft list table` must print it back
// unchanged (so drift detection can compare text).
//
// Regenerate with: go test ./nftapply -run Golden -update
// and read the diff before committing it.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gwstated/internal/testkit/golden"
	"gwstated/nftapply"
)

type goldenCase struct {
	file       string
	about      string
	yaml       string
	allDown    string
	up, active []string
}

func goldenCases() []goldenCase {
	both := []string{"isp1", "isp2"}
	all3 := []string{"isp1", "isp2", "lte"}
	return []goldenCase{
		{"recipe-allworking", "both links up", yamlRecipe, "", both, both},
		{"recipe-noisp1", "isp1 down", yamlRecipe, "", []string{"isp2"}, []string{"isp2"}},
		{"recipe-noisp2", "isp2 down", yamlRecipe, "", []string{"isp1"}, []string{"isp1"}},
		{"recipe-alldown-all", "both down, all_down: all (fail open)", yamlRecipe, "all", nil, both},
		{"recipe-alldown-none", "both down, all_down: none (the recipe's alldown)", yamlRecipe, "none", nil, nil},
		{"recipe-alldown-keep", "both down, all_down: keep (last verdict was noisp1)", yamlRecipe, "keep", nil, []string{"isp2"}},
		{"tiers-tier1-up", "three links in two tiers, all up: tier 1 balances, lte ready", yamlTiers, "", all3, both},
		{"tiers-tier1-partial", "three links, isp1 down: tier 1 still carries", yamlTiers, "", []string{"isp2", "lte"}, []string{"isp2"}},
		{"tiers-tier1-down", "three links, tier 1 down: tier 2 (lte) takes over", yamlTiers, "", []string{"lte"}, []string{"lte"}},
		{"sticky-preferred-up", "https prefers isp2 (up); voip has no preference", yamlSticky, "", both, both},
		{"sticky-preferred-down", "https prefers isp2 (down): pinned to the first active link", yamlSticky, "", []string{"isp1"}, []string{"isp1"}},
		{"natto-allworking", "nat_to (e.g. VRRP addresses on the uplinks), both up", yamlNatTo, "", both, both},
		{"natto-noisp1", "nat_to, isp1 down", yamlNatTo, "", []string{"isp2"}, []string{"isp2"}},
		{"ipv6-allworking", "IPv6 LAN and gateways, isp2 with nat_to", yamlIPv6, "", both, both},
		{"ipv6-noisp2", "IPv6, isp2 down", yamlIPv6, "", []string{"isp1"}, []string{"isp1"}},
	}
}

// goldenText is a Plan as a golden file.
func goldenText(about string, p nftapply.Plan) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# gwstated golden: %s\n", about)
	b.WriteString(p.Table)
	for _, r := range p.Routes {
		fmt.Fprintf(&b, "# ip -%d route replace %s\n", p.Family, r)
	}
	for _, r := range p.Rules {
		fmt.Fprintf(&b, "# ip -%d rule add %s\n", p.Family, r)
	}
	if p.DefaultRoute.IsZero() {
		b.WriteString("# default route: left alone\n")
	} else {
		fmt.Fprintf(&b, "# ip -%d route replace %s\n", p.Family, p.DefaultRoute)
	}
	fmt.Fprintf(&b, "# hash %s\n", p.Hash)
	return b.Bytes()
}

func renderCase(t *testing.T, c goldenCase) nftapply.Plan {
	t.Helper()
	cfg := parseConfig(t, c.yaml)
	if c.allDown != "" {
		cfg.AllDown = c.allDown
	}
	p, err := nftapply.Render(cfg, verdict(cfg, c.up, c.active))
	if err != nil {
		t.Fatalf("%s: %v", c.file, err)
	}
	return p
}

func TestRenderGolden(t *testing.T) {
	for _, c := range goldenCases() {
		p := renderCase(t, c)
		got := goldenText(c.about, p)
		golden.Check(t, filepath.Join("testdata", "golden", c.file+".nft"), got)
	}
}

// TestRenderNftCheck runs every golden table through the real nft parser
// (nft -c -f, which also asks the kernel), then loads it into a namespace
// and requires `nft list table` to print Render's text back unchanged.
func TestRenderNftCheck(t *testing.T) {
	ns := newNetns(t)
	dir := t.TempDir()
	for _, c := range goldenCases() {
		p := renderCase(t, c)
		f := filepath.Join(dir, c.file+".nft")
		if err := os.WriteFile(f, []byte(nftapply.Script(p)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-c", "-f", f).CombinedOutput(); err != nil {
			t.Errorf("%s: nft -c rejects the table: %v\n%s\n%s", c.file, err, out, p.Table)
			continue
		}
		inNetns(t, ns, "nft", "-f", f)
		got := inNetns(t, ns, "nft", "list", "table", "inet", p.TableName)
		if got != p.Table {
			t.Errorf("%s: nft lists the table differently from Render:\n--- render\n%s\n--- nft list table\n%s", c.file, p.Table, got)
		}
	}
}

// TestNftCheckCatchesBadTables makes sure the nft check above can fail.
func TestNftCheckCatchesBadTables(t *testing.T) {
	ns := newNetns(t)
	for _, bad := range []string{
		"table inet gwstated {\n\tchain lan {\n\t\tct mark set numgen inc mod 2 map { 0 : 0x100 \n\t}\n}\n",
		"table inet gwstated {\n\tchain p {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\toifname \"eth1\" ip saddr 192.168.0.0/24 snat ip to 2001:db8::1\n\t}\n}\n",
	} {
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-c", "-f", "-")
		cmd.Stdin = strings.NewReader(bad)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("nft -c accepts a bad table:\n%s\n%s", bad, out)
		}
	}
}
