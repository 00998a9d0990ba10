package nftapply_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/nftapply"
)

// TestRenderUnknownLink: a verdict from another config version is refused.
func TestRenderUnknownLink(t *testing.T) {
	cfg := parseConfig(t, yamlRecipe)
	v := verdict(cfg, []string{"isp1"}, []string{"isp1", "isp9"})
	v.Links["lte"] = linkstate.LinkVerdict{State: linkstate.Up}
	_, err := nftapply.Render(cfg, v)
	if !errors.Is(err, nftapply.ErrUnknownLink) || !strings.Contains(err.Error(), `"isp9", "lte" (configured links: isp1, isp2)`) {
		t.Errorf("got %v", err)
	}
}

// TestRenderHostile: a Config built in code, past config's validation,
// still cannot smuggle nft syntax or ip options through Render.
func TestRenderHostile(t *testing.T) {
	for name, mutate := range map[string]func(c *config.Config){
		"table name":      func(c *config.Config) { c.NFT.Table = `gw" ; flush ruleset ; "` },
		"lan interface":   func(c *config.Config) { c.LAN.Interface = `eth0" accept ; "` },
		"link interface":  func(c *config.Config) { c.Links[0].Interface = "-all" },
		"newline":         func(c *config.Config) { c.Links[1].Interface = "eth2\nflush ruleset" },
		"link name":       func(c *config.Config) { c.Links[0].Name = `isp1"` },
		"sticky name":     func(c *config.Config) { c.Sticky[0].Name = "https\n" },
		"sticky proto":    func(c *config.Config) { c.Sticky[0].Proto = "tcp dport 1 accept" },
		"sticky port":     func(c *config.Config) { c.Sticky[0].Ports = []int{0} },
		"mixed family":    func(c *config.Config) { c.Links[0].Gateway = netip.MustParseAddr("2001:db8::1") },
		"zoned nat_to":    func(c *config.Config) { c.Links[0].NatTo = netip.MustParseAddr("fe80::1%eth1") },
		"mark overflow":   func(c *config.Config) { c.NFT.MarkBase = 1<<32 - 1 },
		"reserved table":  func(c *config.Config) { c.NFT.TableBase = 254 },
		"priority 32766":  func(c *config.Config) { c.NFT.RulePriority = 32762 },
		"no links":        func(c *config.Config) { c.Links = nil },
		"probe source v6": func(c *config.Config) { c.Nodes["fw1"].ProbeSource["isp1"] = netip.MustParseAddr("2001:db8::9") },
	} {
		cfg := parseConfig(t, yamlRecipe)
		mutate(cfg)
		if _, err := nftapply.Render(cfg, verdict(cfg, nil, nil)); !errors.Is(err, nftapply.ErrUnrenderable) {
			t.Errorf("%s: want ErrUnrenderable, got %v", name, err)
		}
	}
	if _, err := nftapply.Render(nil, linkstate.Verdict{}); !errors.Is(err, nftapply.ErrUnrenderable) {
		t.Errorf("nil config: %v", err)
	}
}

// TestRenderSameHashOnEveryNode: the source rules differ per node, the
// hash does not.
func TestRenderSameHashOnEveryNode(t *testing.T) {
	yaml := strings.Replace(yamlRecipe, "nodes:\n", "nodes:\n  fw2: {probe_source: {isp1: 198.51.100.199}}\n", 1)
	c1, err := config.Parse([]byte(yaml), "fw1")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := config.Parse([]byte(yaml), "fw2")
	if err != nil {
		t.Fatal(err)
	}
	both := []string{"isp1", "isp2"}
	p1, err1 := nftapply.Render(c1, verdict(c1, both, both))
	p2, err2 := nftapply.Render(c2, verdict(c2, both, both))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if p1.Hash != p2.Hash || len(p1.Rules) == len(p2.Rules) {
		t.Errorf("fw1 %s (%d rules), fw2 %s (%d rules): want the same hash, different source rules", p1.Hash, len(p1.Rules), p2.Hash, len(p2.Rules))
	}
}
