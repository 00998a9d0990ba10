package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"gwstated/linkstate"
)

// Self returns the selected node's entry in nodes (the zero NodeSpec when
// the node has none).
func (c *Config) Self() NodeSpec { return c.Nodes[c.Node] }

// IsWitness reports whether the selected node only runs etcd and gossip
// (no probes, no pf).
func (c *Config) IsWitness() bool { return c.Witness || c.Self().Witness }

// ProbeSource returns the selected node's probe source address for a link,
// or the zero Addr when the node sets none (the kernel picks the source).
func (c *Config) ProbeSource(link string) netip.Addr { return c.Self().ProbeSource[link] }

// TrackFile is the selected node's keepalived track file:
// nodes.<node>.vrrp.track_file when set, else vrrp.track_file.
func (c *Config) TrackFile() string {
	if f := c.Self().VRRP.TrackFile; f != "" {
		return f
	}
	return c.VRRP.TrackFile
}

// Link returns the link with this name.
func (c *Config) Link(name string) (Link, bool) {
	for _, l := range c.Links {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

// Settle is how long the link's probes take to call a dead link down from
// their start: fall misses one interval apart, the last waited for timeout.
// linkstate keeps a link that is still unknown in its place for this long
// (a cold start does not drop a link whose probes have not spoken yet).
func (l Link) Settle() time.Duration {
	return time.Duration(l.Probe.Fall)*l.Probe.Interval + l.Probe.Timeout
}

// Policy is the part of the configuration that linkstate.Decide needs:
// the links with their tiers in configuration order, decide, all_down and
// damping.
func (c *Config) Policy() linkstate.Policy {
	links := make([]linkstate.LinkPolicy, len(c.Links))
	for i, l := range c.Links {
		links[i] = linkstate.LinkPolicy{Name: l.Name, Tier: l.Tier, Settle: l.Settle()}
	}
	return linkstate.Policy{
		Links:   links,
		Decide:  linkstate.DecideMode(c.Cluster.Decide),
		AllDown: linkstate.AllDownMode(c.AllDown),
		Damping: linkstate.Damping(c.Damping),
	}
}

// Gossip returns cluster.gossip with the selected node's bind and advertise
// overrides applied.
func (c *Config) Gossip() Gossip {
	g := c.Cluster.Gossip
	g.Join = slices.Clone(g.Join)
	n := c.Self().Gossip
	if n.Bind != "" {
		g.Bind = n.Bind
	}
	if n.Advertise != "" {
		g.Advertise = n.Advertise
	}
	return g
}

// Embed returns cluster.etcd.embed with the selected node's data_dir,
// peer_url and client_url overrides applied, or nil when no etcd member runs in-process.
func (c *Config) Embed() *Embed {
	e := c.Cluster.Etcd.Embed
	if e == nil {
		return nil
	}
	out := *e
	n := c.Self().Etcd
	if n.PeerURL != "" {
		out.PeerURL = n.PeerURL
	}
	if n.ClientURL != "" {
		out.ClientURL = n.ClientURL
	}
	if n.DataDir != "" {
		out.DataDir = n.DataDir
	}
	return &out
}

// EtcdEndpoints returns the endpoints the etcd client dials:
// cluster.etcd.endpoints when set; otherwise, with an embedded member, the
// selected node's client URL first, then every other node's client URL.
func (c *Config) EtcdEndpoints() []string {
	if len(c.Cluster.Etcd.Endpoints) > 0 {
		return slices.Clone(c.Cluster.Etcd.Endpoints)
	}
	self := c.Embed()
	if self == nil {
		return nil
	}
	var out []string
	add := func(u string) {
		if u != "" && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	add(self.ClientURL)
	for _, n := range sortedKeys(c.Nodes) {
		add(c.Nodes[n].Etcd.ClientURL)
	}
	return out
}

// NATAnchor is the name of a link's nat anchor (pf.nat_prefix + link).
func (p PF) NATAnchor(link string) string { return p.NATPrefix + link }

// PassAnchor is the name of a link's pass anchor (pf.pass_prefix + link).
func (p PF) PassAnchor(link string) string { return p.PassPrefix + link }

// Hash is the hex sha256 of the configuration in canonical JSON, without
// the node selection: every node that reads the same file (with the same
// defaults) reports the same hash, which is how gossip spots a node running
// a different configuration.
func (c *Config) Hash() string {
	cp := *c
	cp.Node = ""
	b, err := json.Marshal(&cp)
	if err != nil {
		// Only a NaN or infinite float, which Parse refuses, gets here.
		b = fmt.Appendf(nil, "%#v", cp)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// String writes the percentage as YAML takes it back: 40%, 12.5%.
func (p Percent) String() string {
	return strconv.FormatFloat(float64(p), 'f', -1, 64) + "%"
}

// VerdictUp is the verdict for "the links in up are up, every other link is
// down", with no previous verdict and no overrides: linkstate.Decide on one
// synthetic alive node that sees exactly that. gwctl render and check, and
// the lab's hand-applied data plane, show the rules of such a verdict.
func (c *Config) VerdictUp(up []string, now time.Time) linkstate.Verdict {
	view := linkstate.NodeView{Alive: true, Links: make(map[string]linkstate.Observation, len(c.Links))}
	for _, l := range c.Links {
		st := linkstate.Down
		if slices.Contains(up, l.Name) {
			st = linkstate.Up
		}
		view.Links[l.Name] = linkstate.Observation{Link: l.Name, State: st, Since: now, LastOK: now, Seq: 1}
	}
	v, _ := linkstate.Decide(linkstate.Verdict{}, linkstate.Observations{"gwctl-render": view}, nil, c.Policy(), now)
	return v
}
