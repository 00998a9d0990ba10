package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The Linux real-traffic variant of the lab (RouteLAN): the firewalls
// forward, the LAN host's default gateway is the pair's VRRP address, and
// the internet host behind every ISP answers with that ISP's identity.
var (
	// LANGateway is the VRRP address on the LAN (keepalived), the LAN
	// host's default gateway.
	LANGateway = netip.MustParseAddr("198.51.100.1")
	// LANGatewayVRID is its VRRP router id.
	LANGatewayVRID = 51
)

// RouteLAN turns the lab into a routed one: forwarding on in every
// firewall, reverse-path filtering off (a reply may arrive on a different
// uplink from the one the main table would choose: policy routing sends
// each flow out of the uplink its mark selects), and the LAN host's
// default route via LANGateway. It does not install NAT or balancing:
// that is the data plane's job (gwstated's nft table, or StaticNAT).
func (l *Lab) RouteLAN(ctx context.Context) error {
	if l.opt.NoLAN {
		return fmt.Errorf("lab: RouteLAN needs the LAN (Options.NoLAN is set)")
	}
	for _, fw := range l.fws {
		keys := []string{"net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"}
		for _, dev := range l.fwInterfaces() {
			keys = append(keys, "net.ipv4.conf."+dev+".rp_filter=0")
		}
		if err := run(ctx, "ip", append([]string{"netns", "exec", l.Netns(fw), "sysctl", "-q", "-w"}, keys...)...); err != nil {
			return err
		}
	}
	return l.IP(ctx, "lan", "route", "replace", "default", "via", LANGateway.String(), "dev", "br0")
}

// fwInterfaces are a firewall's interfaces: wan0.., sync0, lan0.
func (l *Lab) fwInterfaces() []string {
	var out []string
	for _, s := range l.isps {
		out = append(out, "wan"+strconv.Itoa(s.Index-1))
	}
	if !l.opt.NoWitness {
		out = append(out, "sync0")
	}
	if !l.opt.NoLAN {
		out = append(out, "lan0")
	}
	return out
}

// staticTable is the nft table of StaticNAT: never gwstated's.
const staticTable = "gwlabnat"

// StaticMark is the firewall mark StaticNAT gives the connections it
// sends to isp i (1-based); its `ip rule` sends them to the uplink's
// policy table (Uplink.Table).
func StaticMark(i int) int { return 0x200 + i }

// StaticNAT installs, in firewall fw, the data plane gwstated's
// `dataplane: nft` installs with every link up, written by hand: new
// connections from the LAN get a connection mark round-robin over the
// ISPs, every LAN packet gets its connection's mark, a mark's `ip rule`
// routes it out of that ISP's uplink, and LAN sources are masqueraded on
// every uplink. It stands in for gwstated where a test needs a routed
// pair without agents and without gwstated's packages (the traffic tool's
// own test, TestLinuxStaticTraffic).
func (l *Lab) StaticNAT(ctx context.Context, fw string) error {
	return l.applyStatic(ctx, fw, l.staticRules(l.isps))
}

// staticRules renders StaticNAT's table for the ISPs in up.
func (l *Lab) staticRules(up []ISP) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", staticTable)
	b.WriteString("\tchain pre {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n")
	if len(up) > 0 {
		var m []string
		for k, s := range up {
			m = append(m, fmt.Sprintf("%d : %#x", k, StaticMark(s.Index)))
		}
		fmt.Fprintf(&b, "\t\tiifname \"lan0\" ip daddr != { %s, 224.0.0.0/4 } ct state new ct mark set numgen inc mod %d map { %s }\n",
			LANPrefix, len(up), strings.Join(m, ", "))
	}
	b.WriteString("\t\tiifname \"lan0\" meta mark set ct mark\n\t}\n")
	b.WriteString("\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	for _, s := range l.isps {
		fmt.Fprintf(&b, "\t\toifname \"wan%d\" ip saddr %s masquerade\n", s.Index-1, LANPrefix)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

func (l *Lab) applyStatic(ctx context.Context, fw, table string) error {
	// Replace the table in one transaction: create (so the delete cannot
	// fail), delete, add.
	text := fmt.Sprintf("table inet %s\ndelete table inet %s\n%s", staticTable, staticTable, table)
	if err := runStdin(ctx, text, "ip", "netns", "exec", l.Netns(fw), "nft", "-f", "-"); err != nil {
		return fmt.Errorf("lab: static nat in %s: %w", fw, err)
	}
	ns := l.Netns(fw)
	for _, s := range l.isps {
		u := l.Uplink(fw, s.Name)
		mark := strconv.Itoa(StaticMark(s.Index))
		// idempotent: delete a rule left by an earlier call first
		_ = run(ctx, "ip", "-n", ns, "rule", "del", "fwmark", mark, "table", strconv.Itoa(u.Table), "priority", strconv.Itoa(90+s.Index))
		if err := run(ctx, "ip", "-n", ns, "rule", "add", "fwmark", mark, "table", strconv.Itoa(u.Table), "priority", strconv.Itoa(90+s.Index)); err != nil {
			return err
		}
	}
	return nil
}
