package nftapply

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"gwstated/config"
	"gwstated/linkstate"
)

// Sentinel errors of Check; test with errors.Is.
var (
	// ErrMissing: nftables, policy routing or conntrack is not there.
	ErrMissing = errors.New("the Linux data plane cannot run here")
	// ErrCollision: a mark, routing table or rule priority gwstated would
	// use is already used by something else.
	ErrCollision = errors.New("already used by something else")
)

// Check is the start-up check of dataplane: nft on this host. It reports
// every problem at once: a missing tool or kernel feature (nft and the
// nf_tables kernel module, ip rule and policy routing, conntrack when
// nft.kill_states is on), forwarding off or strict rp_filter on an uplink,
// and every collision with state gwstated does not
// own — a rule in its priority range that is not one of its own, a rule
// elsewhere that uses its marks or routing tables, a route in its routing
// tables other than the link's default route, and another nft table that
// reads or sets its marks. gwstated's own state (a restarted agent's) is
// no collision. Check only reads.
func Check(ctx context.Context, r Runner, cfg *config.Config) error {
	// The plan with every link ready lists every rule and route gwstated
	// can own under this configuration.
	all := make([]string, len(cfg.Links))
	for i, l := range cfg.Links {
		all[i] = l.Name
	}
	v := linkstate.Verdict{Links: map[string]linkstate.LinkVerdict{}, Active: all}
	for _, n := range all {
		v.Links[n] = linkstate.LinkVerdict{State: linkstate.Up}
	}
	p, err := Render(cfg, v)
	if err != nil {
		return err
	}
	var errs []error
	missing := func(what string, err error) {
		errs = append(errs, fmt.Errorf("%w: %s: %w", ErrMissing, what, err))
	}
	collide := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrCollision}, a...)...))
	}
	notFound := func(err error) bool { return errors.Is(err, exec.ErrNotFound) }

	ruleset, err := r.Run(ctx, nil, "nft", "list", "ruleset")
	switch {
	case notFound(err):
		missing("nftables: nft(8) is not installed (apt-get install nftables)", err)
	case err != nil:
		missing("nftables: nft list ruleset fails (no nf_tables in the kernel, or no CAP_NET_ADMIN)", err)
	}
	rules, rerr := readRules(ctx, r, p.Family)
	switch {
	case notFound(rerr):
		missing("policy routing: ip(8) is not installed (apt-get install iproute2)", rerr)
	case rerr != nil:
		missing("policy routing: ip rule show fails (a kernel without CONFIG_IP_MULTIPLE_TABLES?)", rerr)
	}
	if cfg.NFT.KillStates {
		if _, err := r.Run(ctx, nil, "conntrack", "--version"); err != nil {
			missing("conntrack(8) is needed with nft.kill_states: true (apt-get install conntrack, or set kill_states: false)", err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	first, last := cfg.NFT.RulePriorities(len(cfg.Links))
	own := map[string]bool{}
	for _, rl := range p.Rules {
		own[ruleKey(rl)] = true
	}
	marks := map[uint32]string{}
	tables := map[uint32]string{}
	for _, l := range p.Links {
		marks[l.Mark] = l.Name
		tables[l.Table] = l.Name
	}
	for _, ir := range rules {
		rl, ok := ir.toRule()
		inRange := ir.Priority >= first && ir.Priority <= last
		switch {
		case inRange && ok && own[ruleKey(rl)]:
			continue // gwstated's own, from an earlier run
		case inRange:
			collide("ip rule at priority %d (%s) is in gwstated's range %d-%d (nft.rule_priority) and is not gwstated's", ir.Priority, ruleText(ir), first, last)
			continue
		}
		if n, err := strconv.ParseUint(ir.Table, 10, 32); err == nil {
			if link, ours := tables[uint32(n)]; ours {
				collide("ip rule at priority %d (%s) looks up table %d, link %s's routing table (nft.table_base)", ir.Priority, ruleText(ir), n, link)
			}
		}
		if m, err := strconv.ParseUint(strings.TrimPrefix(ir.Fwmark, "0x"), 16, 32); err == nil && ir.Fwmark != "" {
			if link, ours := marks[uint32(m)]; ours {
				collide("ip rule at priority %d (%s) matches mark %s, link %s's mark (nft.mark_base)", ir.Priority, ruleText(ir), hexMark(uint32(m)), link)
			}
		}
	}
	for _, rt := range p.Routes {
		routes, err := readRoutes(ctx, r, p.Family, rt.Table)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrRead, err))
			continue
		}
		def, extra := defaultOf(routes, rt.Table)
		if def.Gateway.IsValid() && !sameRoute(def, rt) {
			extra = append(extra, def.String())
		}
		if len(extra) > 0 {
			collide("routing table %d (link %s, nft.table_base) holds %s, not gwstated's", rt.Table, rt.Link, strings.Join(extra, "; "))
		}
	}
	if t, err := readTable(ctx, r, p.TableName); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrRead, err))
	} else if t != "" && !strings.Contains(t, "\tcomment \""+TableComment+"\"\n") {
		collide("nft table inet %s exists and is not gwstated's (it lacks the comment %q): rename nft.table or remove it", p.TableName, TableComment)
	}
	errs = append(errs, checkSysctls(ctx, r, p)...)
	for _, line := range foreignMarkLines(string(ruleset), p.TableName, marks) {
		collide("%s", line)
	}
	return errors.Join(errs...)
}

// ruleText is an ip rule as a person reads it.
func ruleText(ir ipRule) string {
	var f []string
	if ir.Src != "" && ir.Src != "all" {
		s := "from " + ir.Src
		if ir.SrcLen != nil {
			s += "/" + strconv.Itoa(*ir.SrcLen)
		}
		f = append(f, s)
	}
	if ir.Fwmark != "" {
		f = append(f, "fwmark "+ir.Fwmark)
	}
	if ir.Iif != "" {
		f = append(f, "iif "+ir.Iif)
	}
	if ir.Table != "" {
		f = append(f, "lookup "+ir.Table)
	}
	if len(f) == 0 {
		return "from all"
	}
	return strings.Join(f, " ")
}

// foreignMarkLines finds the lines of `nft list ruleset` outside
// gwstated's own table that mention one of its marks (nft prints marks as
// 0x%08x).
func foreignMarkLines(ruleset, own string, marks map[uint32]string) []string {
	var out []string
	table := ""
	for _, line := range strings.Split(ruleset, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "table ") {
			table = strings.TrimSuffix(strings.TrimPrefix(t, "table "), " {")
			continue
		}
		if table == "inet "+own || !strings.Contains(t, "mark") {
			continue
		}
		var hit []string
		for m, link := range marks {
			if strings.Contains(t, nftMark(m)) || strings.Contains(t, hexMark(m)+" ") || strings.HasSuffix(t, hexMark(m)) {
				hit = append(hit, nftMark(m)+" (link "+link+")")
			}
		}
		if len(hit) > 0 {
			slices.Sort(hit)
			out = append(out, fmt.Sprintf("nft table %s uses mark %s (nft.mark_base): %s", table, strings.Join(hit, ", "), t))
		}
	}
	return out
}

// checkSysctls refuses a host that would not carry the LAN's traffic:
// forwarding off for lan.network's family, or strict reverse-path
// filtering (rp_filter 1) on an uplink, which drops the replies that
// arrive on a link other than the one the main default route names.
// Interfaces that do not exist yet are skipped (a PPP link comes later).
func checkSysctls(ctx context.Context, r Runner, p Plan) []error {
	var errs []error
	get := func(key string) (int, bool) {
		out, err := r.Run(ctx, nil, "sysctl", "-n", key)
		if err != nil {
			return 0, false
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(out)))
		return n, err == nil
	}
	fwd := "net.ipv4.ip_forward"
	if p.Family == 6 {
		fwd = "net.ipv6.conf.all.forwarding"
	}
	if v, ok := get(fwd); ok && v != 1 {
		errs = append(errs, fmt.Errorf("%w: %s is %d: this host does not forward the LAN's traffic (sysctl -w %s=1)", ErrMissing, fwd, v, fwd))
	}
	if p.Family == 4 {
		all, _ := get("net.ipv4.conf.all.rp_filter")
		for _, l := range p.Links {
			v, ok := get("net.ipv4.conf." + l.Interface + ".rp_filter")
			if ok && max(all, v) == 1 {
				errs = append(errs, fmt.Errorf("%w: strict reverse-path filtering (rp_filter 1) on %s (link %s) drops replies that arrive on a link the main default route does not name: set net.ipv4.conf.%s.rp_filter and net.ipv4.conf.all.rp_filter to 2 (loose) or 0", ErrMissing, l.Interface, l.Name, l.Interface))
			}
		}
	}
	return errs
}
