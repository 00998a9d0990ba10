package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Direction says which packets a fault drops, seen from the namespace that
// holds it.
type Direction int

const (
	// Both drops packets arriving at and leaving the namespace.
	Both Direction = iota
	// Ingress drops packets arriving at the namespace (nft input hook):
	// in a gateway, the firewalls' requests.
	Ingress
	// Egress drops packets leaving the namespace (nft output hook): in a
	// gateway, its replies.
	Egress
)

func (d Direction) String() string {
	switch d {
	case Both:
		return "both"
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	}
	return "direction(" + strconv.Itoa(int(d)) + ")"
}

// Fault is one packet-dropping rule set.
type Fault struct {
	// Loss is the percentage dropped, 1..100; 100 is a hard drop, less uses
	// nft's `numgen random mod 100 < Loss`.
	Loss      int
	Direction Direction
	// Peers restricts the fault to packets from (ingress) or to (egress)
	// these addresses, e.g. one firewall's uplink addresses. Empty: all.
	Peers []netip.Addr
	// Interface restricts the fault to one interface of the namespace
	// (iifname/oifname), e.g. wan0 in a firewall. Empty: all.
	Interface string
}

const nftTable = "gwlab"

func (l *Lab) nft(ctx context.Context, role string, args ...string) error {
	return run(ctx, "ip", append([]string{"netns", "exec", l.Netns(role), "nft"}, args...)...)
}

// AddFault installs f in role's namespace (fw1, isp1, witness, ...), in
// addition to the faults already there.
func (l *Lab) AddFault(ctx context.Context, role string, f Fault) error {
	if f.Loss < 1 || f.Loss > 100 {
		return fmt.Errorf("lab: fault loss %d%%: want 1..100", f.Loss)
	}
	if f.Interface != "" && !validIfname(f.Interface) {
		return fmt.Errorf("lab: fault interface %q is not an interface name", f.Interface)
	}
	var chains []string
	switch f.Direction {
	case Both:
		chains = []string{"in", "out"}
	case Ingress:
		chains = []string{"in"}
	case Egress:
		chains = []string{"out"}
	default:
		return fmt.Errorf("lab: fault direction %v", f.Direction)
	}
	// One nft invocation (commands separated by ";"): the fault starts at
	// once and atomically, which the latency measurements rely on.
	args := []string{"add", "table", "inet", nftTable}
	for _, c := range [][2]string{{"in", "input"}, {"out", "output"}} {
		args = append(args, ";", "add", "chain", "inet", nftTable, c[0],
			"{", "type", "filter", "hook", c[1], "priority", "0", ";", "policy", "accept", ";", "}")
	}
	for _, chain := range chains {
		for _, rule := range faultRules(chain, f) {
			args = append(append(args, ";", "add", "rule", "inet", nftTable, chain), rule...)
		}
	}
	return l.nft(ctx, role, args...)
}

// faultRules returns the nft rule expressions (one argument per token) for
// f in chain "in" or "out".
func faultRules(chain string, f Fault) [][]string {
	var base []string
	if f.Interface != "" {
		if chain == "in" {
			base = append(base, "iifname", f.Interface)
		} else {
			base = append(base, "oifname", f.Interface)
		}
	}
	tail := []string{"drop"}
	if f.Loss < 100 {
		tail = []string{"numgen", "random", "mod", "100", "<", strconv.Itoa(f.Loss), "drop"}
	}
	if len(f.Peers) == 0 {
		return [][]string{append(base, tail...)}
	}
	dir := "saddr"
	if chain == "out" {
		dir = "daddr"
	}
	var rules [][]string
	for _, p := range f.Peers {
		fam := "ip"
		if p.Is6() {
			fam = "ip6"
		}
		r := append(append(append([]string{}, base...), fam, dir, p.String()), tail...)
		rules = append(rules, r)
	}
	return rules
}

// Clear removes every fault from role's namespace.
func (l *Lab) Clear(ctx context.Context, role string) error {
	err := l.nft(ctx, role, "delete", "table", "inet", nftTable)
	if err != nil && strings.Contains(err.Error(), "No such file or directory") {
		return nil
	}
	return err
}

// ClearAll removes every fault from every namespace of the lab.
func (l *Lab) ClearAll(ctx context.Context) error {
	roles := l.Firewalls()
	if !l.opt.NoWitness {
		roles = append(roles, "witness")
	}
	if !l.opt.NoLAN {
		roles = append(roles, "lan")
	}
	for _, s := range l.isps {
		roles = append(roles, s.Name)
	}
	for _, r := range roles {
		if err := l.Clear(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// Cut drops everything to and from an ISP's gateway (both firewalls, both
// directions, the gateway and the internet host behind it).
func (l *Lab) Cut(ctx context.Context, isp string) error {
	return l.AddFault(ctx, isp, Fault{Loss: 100})
}

// Loss drops pct% of the requests arriving at an ISP's gateway: the probe
// loss seen by both firewalls is pct%.
func (l *Lab) Loss(ctx context.Context, isp string, pct int) error {
	return l.AddFault(ctx, isp, Fault{Loss: pct, Direction: Ingress})
}

// Restore removes the faults of an ISP's gateway.
func (l *Lab) Restore(ctx context.Context, isp string) error { return l.Clear(ctx, isp) }

// FirewallPeers returns fw's uplink addresses on isp, for a fault that hits
// one firewall only.
func (l *Lab) FirewallPeers(fw, isp string) []netip.Addr {
	u := l.Uplink(fw, isp)
	return []netip.Addr{u.Addr4, u.Addr6}
}

func validIfname(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
