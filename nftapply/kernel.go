package nftapply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Kernel is what the kernel holds of the things gwstated owns, as read
// back by ReadKernel.
type Kernel struct {
	Table        string           // nft list table inet NAME; "" when absent
	Routes       map[uint32]Route // default route of each of gwstated's routing tables
	Extra        map[uint32][]string
	Rules        []Rule   // ip rules in gwstated's priority range, of the forms gwstated writes
	Foreign      []string // other rules in that range (JSON), never touched
	DefaultRoute Route    // main table default route
}

// famFlag is ip's -4 or -6.
func famFlag(family int) string {
	if family == 6 {
		return "-6"
	}
	return "-4"
}

// ipRule is one entry of `ip -j rule show`.
type ipRule struct {
	Priority       int    `json:"priority"`
	Src            string `json:"src"`
	SrcLen         *int   `json:"srclen"`
	Dst            string `json:"dst"`
	Fwmark         string `json:"fwmark"`
	Fwmask         string `json:"fwmask"`
	Table          string `json:"table"`
	SuppressPrefix *int   `json:"suppress_prefixlen"`
	Iif            string `json:"iif"`
	Oif            string `json:"oif"`
	Action         string `json:"action"`
	Not            any    `json:"not"`
}

// ipRoute is one entry of `ip -j route show`.
type ipRoute struct {
	Dst     string `json:"dst"`
	Gateway string `json:"gateway"`
	Dev     string `json:"dev"`
	Type    string `json:"type"`
}

// readRules returns every ip rule of the family (ip -j rule show).
func readRules(ctx context.Context, r Runner, family int) ([]ipRule, error) {
	out, err := r.Run(ctx, nil, "ip", famFlag(family), "-j", "rule", "show")
	if err != nil {
		return nil, err
	}
	var rules []ipRule
	if err := json.Unmarshal(out, &rules); err != nil {
		return nil, fmt.Errorf("ip -j rule show: %w", err)
	}
	return rules, nil
}

// toRule converts an ip rule to a Rule; ok is false when it has any
// selector or action a gwstated rule never has.
func (ir ipRule) toRule() (Rule, bool) {
	r := Rule{Priority: ir.Priority}
	if ir.Dst != "" && ir.Dst != "all" || ir.Iif != "" || ir.Oif != "" || ir.Not != nil || ir.Action != "" && ir.Action != "to_tbl" {
		return r, false
	}
	if ir.Fwmask != "" && ir.Fwmask != "0xffffffff" {
		return r, false
	}
	if ir.Src != "" && ir.Src != "all" {
		a, err := netip.ParseAddr(ir.Src)
		if err != nil || ir.SrcLen != nil && *ir.SrcLen != a.BitLen() {
			return r, false
		}
		r.From = a
	}
	if ir.Fwmark != "" {
		m, err := strconv.ParseUint(strings.TrimPrefix(ir.Fwmark, "0x"), 16, 32)
		if err != nil {
			return r, false
		}
		r.Fwmark = uint32(m)
	}
	switch ir.Table {
	case "main":
	case "", "local", "default":
		return r, false
	default:
		t, err := strconv.ParseUint(ir.Table, 10, 32)
		if err != nil {
			return r, false
		}
		r.Table = uint32(t)
	}
	if ir.SuppressPrefix != nil {
		if *ir.SuppressPrefix != 0 || r.Table != 0 {
			return r, false
		}
		r.SuppressMain = true
	}
	return r, true
}

// ruleKey compares rules by what the kernel holds.
func ruleKey(r Rule) string {
	return Rule{Priority: r.Priority, Fwmark: r.Fwmark, From: r.From, Table: r.Table, SuppressMain: r.SuppressMain}.String()
}

// readRoutes returns the routes of table t (0: main); a table that does
// not exist is empty.
func readRoutes(ctx context.Context, r Runner, family int, t uint32) ([]ipRoute, error) {
	table := "main"
	if t != 0 {
		table = strconv.FormatUint(uint64(t), 10)
	}
	out, err := r.Run(ctx, nil, "ip", famFlag(family), "-j", "route", "show", "table", table)
	if err != nil {
		var ce *CmdError
		if errors.As(err, &ce) && strings.Contains(ce.Stderr, "table does not exist") {
			return nil, nil
		}
		return nil, err
	}
	var routes []ipRoute
	if len(strings.TrimSpace(string(out))) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return nil, fmt.Errorf("ip -j route show table %s: %w", table, err)
	}
	return routes, nil
}

// defaultOf finds the default route among routes.
func defaultOf(routes []ipRoute, t uint32) (Route, []string) {
	var def Route
	var extra []string
	for _, rt := range routes {
		if rt.Dst == "default" && (rt.Type == "" || rt.Type == "unicast") && !def.Gateway.IsValid() {
			if gw, err := netip.ParseAddr(rt.Gateway); err == nil {
				def = Route{Table: t, Gateway: gw, Dev: rt.Dev}
				continue
			}
		}
		extra = append(extra, strings.TrimSpace(rt.Dst+" via "+rt.Gateway+" dev "+rt.Dev))
	}
	return def, extra
}

// readTable returns `nft list table inet name`, "" when there is none.
func readTable(ctx context.Context, r Runner, name string) (string, error) {
	out, err := r.Run(ctx, nil, "nft", "list", "table", "inet", name)
	if err != nil {
		var ce *CmdError
		if errors.As(err, &ce) && strings.Contains(ce.Stderr, "No such file or directory") {
			return "", nil
		}
		return "", err
	}
	return string(out), nil
}

// ReadKernel reads what the kernel holds of everything p's configuration
// owns: the table, the routing tables of p.Links, the rules in the
// priority range first..last and the main default route. Four to 3+links
// commands, all reads.
func ReadKernel(ctx context.Context, r Runner, p Plan, first, last int) (Kernel, error) {
	k := Kernel{Routes: map[uint32]Route{}, Extra: map[uint32][]string{}}
	var err error
	if k.Table, err = readTable(ctx, r, p.TableName); err != nil {
		return k, err
	}
	rules, err := readRules(ctx, r, p.Family)
	if err != nil {
		return k, err
	}
	for _, ir := range rules {
		if ir.Priority < first || ir.Priority > last {
			continue
		}
		rule, ok := ir.toRule()
		if !ok {
			b, _ := json.Marshal(ir)
			k.Foreign = append(k.Foreign, string(b))
			continue
		}
		k.Rules = append(k.Rules, rule)
	}
	for _, l := range p.Links {
		routes, err := readRoutes(ctx, r, p.Family, l.Table)
		if err != nil {
			return k, err
		}
		def, extra := defaultOf(routes, l.Table)
		if def.Gateway.IsValid() {
			k.Routes[l.Table] = def
		}
		if len(extra) > 0 {
			k.Extra[l.Table] = extra
		}
	}
	main, err := r.Run(ctx, nil, "ip", famFlag(p.Family), "-j", "route", "show", "table", "main", "default")
	if err != nil {
		return k, err
	}
	var routes []ipRoute
	if s := strings.TrimSpace(string(main)); s != "" {
		if err := json.Unmarshal(main, &routes); err != nil {
			return k, fmt.Errorf("ip -j route show table main default: %w", err)
		}
	}
	k.DefaultRoute, _ = defaultOf(routes, 0)
	return k, nil
}
