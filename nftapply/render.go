package nftapply

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"gwstated/config"
	"gwstated/linkstate"
)

// Sentinel errors of Render; test with errors.Is.
var (
	// ErrUnknownLink: the verdict names a link the configuration lacks
	// (linkstate.ErrUnknownLink).
	ErrUnknownLink = linkstate.ErrUnknownLink
	// ErrUnrenderable: the configuration cannot be written as an nft table
	// and ip rules (a name that could smuggle nft syntax, mixed address
	// families, marks or tables out of range).
	ErrUnrenderable = errors.New("configuration cannot be rendered for nftables")
)

// CommentPrefix starts the comment of every rule Render writes.
const CommentPrefix = "gwstated:"

// TableComment is the comment of the table: what an admin reads first in
// `nft list table inet gwstated`.
const TableComment = "managed by gwstated: edits are reverted"

// Render turns a verdict into the complete Linux state for it on the
// selected node (cfg.Node): the nft table, the routing tables and ip rules,
// the main default route and the hash.
//
// Links are ready when their verdict is Up or they are in v.Active
// (all_down: all and keep put links that are down to use); ready links are
// NATed on their interface and have an fwmark rule. New LAN connections are
// spread round-robin over v.Active (numgen inc mod N); a sticky class goes
// to its preferred link while that is ready, else to the first active link.
// Every link has its routing table and, when the node has a probe_source
// for it, a source rule, whatever its state: its probes must leave by it
// even while it is down, or they would be answered through another link.
//
// Render is pure: the same config and verdict give the same Plan.
func Render(cfg *config.Config, v linkstate.Verdict) (Plan, error) {
	if cfg == nil {
		return Plan{}, fmt.Errorf("%w: no configuration", ErrUnrenderable)
	}
	if err := renderCheck(cfg); err != nil {
		return Plan{}, err
	}
	p := Plan{TableName: cfg.NFT.Table, Family: 4}
	if cfg.LAN.Network.Addr().Is6() {
		p.Family = 6
	}
	names := make([]string, len(cfg.Links))
	for i, l := range cfg.Links {
		names[i] = l.Name
	}
	ready, active, err := v.Use(names)
	if err != nil {
		return Plan{}, err
	}
	p.Links = make([]LinkPlan, len(cfg.Links))
	for i, l := range cfg.Links {
		p.Links[i] = LinkPlan{Name: l.Name, Interface: l.Interface, Mark: cfg.NFT.Mark(i), Table: cfg.NFT.RouteTable(i),
			Ready: ready[i], Active: active[i]}
	}

	rs := renderTable(cfg, p)
	p.Table, p.rules = rs.text(), &rs

	n := len(cfg.Links)
	base := cfg.NFT.RulePriority
	p.Rules = append(p.Rules, Rule{Priority: base, SuppressMain: true})
	for i, l := range cfg.Links {
		lp := p.Links[i]
		p.Routes = append(p.Routes, Route{Table: lp.Table, Gateway: l.Gateway, Dev: l.Interface, Link: l.Name})
		if lp.Ready {
			p.Rules = append(p.Rules, Rule{Priority: base + 1 + i, Fwmark: lp.Mark, Table: lp.Table, Link: l.Name})
		}
	}
	for i, l := range cfg.Links {
		if src := cfg.ProbeSource(l.Name); src.IsValid() {
			p.Rules = append(p.Rules, Rule{Priority: base + 1 + n + i, From: src, Table: p.Links[i].Table, Node: true, Link: l.Name})
		}
	}
	for i, l := range cfg.Links {
		if p.Links[i].Active {
			p.DefaultRoute = Route{Gateway: l.Gateway, Dev: l.Interface, Link: l.Name}
			break
		}
	}
	p.Hash = planHash(p)
	return p, nil
}

// planHash is the hex sha256 over the length-prefixed table, routes,
// cluster-wide rules and default route.
func planHash(p Plan) string {
	h := sha256.New()
	put := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s)) + ":"))
		h.Write([]byte(s))
	}
	put("inet " + p.TableName)
	put(p.Table)
	for _, r := range p.Routes {
		put(r.String())
	}
	for _, r := range p.Rules {
		if !r.Node {
			put(r.String())
		}
	}
	put(p.DefaultRoute.String())
	return hex.EncodeToString(h.Sum(nil))
}

// nftMark is a mark as nft lists it: 0x00000100.
func nftMark(m uint32) string { return fmt.Sprintf("0x%08x", m) }

// renderTable builds the table as data (ruleset); its text is what
// `nft list table` prints.
func renderTable(cfg *config.Config, p Plan) ruleset {
	lan := cfg.LAN.Network.Masked()
	t := ruleset{name: cfg.NFT.Table, comment: TableComment}

	// prerouting: LAN traffic goes through the lan chain.
	t.chains = append(t.chains, chain{name: "prerouting", base: "type filter hook prerouting priority mangle; policy accept;",
		rules: []nftRule{{kind: ruleJump, ifname: cfg.LAN.Interface, lan: lan, target: "lan"}}})

	// lan: new connections get a link's ct mark; every packet of a
	// connection marked by gwstated carries the mark for ip rule fwmark.
	var active []uint32
	firstActive := -1
	for i := range p.Links {
		if p.Links[i].Active {
			active = append(active, p.Links[i].Mark)
			if firstActive < 0 {
				firstActive = i
			}
		}
	}
	lc := chain{name: "lan"}
	for _, s := range cfg.Sticky {
		pin := firstActive
		for i, l := range cfg.Links {
			if s.Link != "" && l.Name == s.Link && p.Links[i].Ready {
				pin = i
			}
		}
		if pin < 0 {
			continue
		}
		ports := slices.Clone(s.Ports)
		slices.Sort(ports)
		lc.rules = append(lc.rules, nftRule{kind: ruleSticky, proto: s.Proto, ports: ports,
			marks: []uint32{p.Links[pin].Mark}, comment: CommentPrefix + s.Name})
	}
	if len(active) > 0 {
		lc.rules = append(lc.rules, nftRule{kind: ruleBalance, marks: active, comment: CommentPrefix + "loadbalance"})
	}
	all := make([]uint32, len(p.Links))
	for i := range p.Links {
		all[i] = p.Links[i].Mark
	}
	lc.rules = append(lc.rules, nftRule{kind: ruleRestore, marks: all})
	t.chains = append(t.chains, lc)

	// postrouting: NAT of LAN sources leaving by a ready link.
	pc := chain{name: "postrouting", base: "type nat hook postrouting priority srcnat; policy accept;"}
	for i, l := range cfg.Links {
		if !p.Links[i].Ready {
			continue
		}
		r := nftRule{kind: ruleMasquerade, ifname: l.Interface, lan: lan, comment: CommentPrefix + l.Name}
		if l.NatTo.IsValid() {
			r.kind, r.natTo = ruleSNAT, l.NatTo
		}
		pc.rules = append(pc.rules, r)
	}
	t.chains = append(t.chains, pc)
	return t
}

// portSet writes ports as nft lists them: 443, or { 80, 443 } sorted.
func portSet(ports []int) string {
	if len(ports) == 1 {
		return strconv.Itoa(ports[0])
	}
	ps := slices.Clone(ports)
	slices.Sort(ps)
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = strconv.Itoa(p)
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// renderCheck is Render's own guard: config validates more strictly, but
// nothing that could change the meaning of the nft text or of an ip command
// line gets through even from a Config built in code.
func renderCheck(cfg *config.Config) error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrUnrenderable}, a...)...))
	}
	if !safeName(cfg.NFT.Table, 63) {
		bad("nft.table: %q is not a safe table name", cfg.NFT.Table)
	}
	if !safeIfname(cfg.LAN.Interface) {
		bad("lan.interface: %q is not an interface name", cfg.LAN.Interface)
	}
	n := cfg.LAN.Network
	lan4 := n.Addr().Is4()
	if !n.IsValid() || n.Addr().Zone() != "" || n.Addr().Is4In6() {
		bad("lan.network: %v is not a network nft can match", n)
	}
	if len(cfg.Links) == 0 {
		bad("links: no links")
	}
	nl := int64(len(cfg.Links))
	if cfg.NFT.MarkBase < 1 || int64(cfg.NFT.MarkBase)+nl-1 > 1<<32-1 {
		bad("nft.mark_base: %d leaves no 32-bit mark for %d links", cfg.NFT.MarkBase, nl)
	}
	if tb := int64(cfg.NFT.TableBase); tb < 1 || tb+nl-1 > 1<<32-1 || (tb <= 255 && tb+nl-1 >= 253) {
		bad("nft.table_base: %d gives tables outside 1-252 and 256-4294967295 to %d links", tb, nl)
	}
	if rp := int64(cfg.NFT.RulePriority); rp < 1 || rp+2*nl > 32765 {
		bad("nft.rule_priority: %d gives priorities outside 1-32765 to %d links", rp, nl)
	}
	addrOK := func(field string, a netip.Addr) {
		switch {
		case !a.IsValid():
			bad("%s: no address", field)
		case a.Zone() != "" || a.Is4In6():
			bad("%s: %s cannot be written in a rule", field, a)
		case a.Is4() != lan4:
			bad("%s: %s is not the address family of lan.network %s", field, a, n)
		}
	}
	for i, l := range cfg.Links {
		f := "links[" + strconv.Itoa(i) + "]"
		if !safeName(l.Name, 63-len(CommentPrefix)) {
			bad("%s.name: %q is not a safe name", f, l.Name)
		}
		if !safeIfname(l.Interface) {
			bad("%s.interface: %q is not an interface name", f, l.Interface)
		}
		addrOK(f+".gateway", l.Gateway)
		if l.NatTo.IsValid() {
			addrOK(f+".nat_to", l.NatTo)
		}
		if src := cfg.ProbeSource(l.Name); src.IsValid() {
			if src.Zone() != "" || src.Is4In6() || src.Is4() != lan4 {
				bad("nodes.%s.probe_source.%s: %s is not an address of lan.network's family", cfg.Node, l.Name, src)
			}
		}
	}
	for i, s := range cfg.Sticky {
		f := "sticky[" + strconv.Itoa(i) + "]"
		if !safeName(s.Name, 63-len(CommentPrefix)) {
			bad("%s.name: %q is not a safe name", f, s.Name)
		}
		if s.Proto != "tcp" && s.Proto != "udp" {
			bad("%s.proto: %q is not tcp or udp", f, s.Proto)
		}
		if len(s.Ports) == 0 {
			bad("%s.ports: no ports", f)
		}
		seen := map[int]bool{}
		for j, port := range s.Ports {
			if port < 1 || port > 65535 || seen[port] {
				bad("%s.ports[%d]: %d is not a port (1-65535) or is listed twice", f, j, port)
			}
			seen[port] = true
		}
		if _, ok := cfg.Link(s.Link); s.Link != "" && !ok {
			bad("%s.link: %q is not a configured link", f, s.Link)
		}
	}
	return errors.Join(errs...)
}

// safeName: [a-z0-9][a-z0-9_-]*, at most max bytes.
func safeName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// safeIfname: letters, digits and . _ - (not first), at most 15 bytes
// (IFNAMSIZ): nothing that ends an nft string or starts an option.
func safeIfname(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// Script is the nft input that replaces the table in one transaction:
// create it if missing, delete it, define it again. nft -f sends the three
// as one netlink batch, so packets see the old table or the new one.
func Script(p Plan) string {
	return "table inet " + p.TableName + "\ndelete table inet " + p.TableName + "\n" + p.Table
}
