package pfrule

import (
	"slices"
	"strconv"
	"strings"
)

// printAddr is print_addr (pf_print_state.c 1.59) without -vv: "any" for a
// zero address and mask, "/bits" only below the host length, "(if)" for a
// dynamic address, "<name>" for a table.
func printAddr(b *strings.Builder, a Addr) {
	switch a.Kind {
	case AddrAny:
		b.WriteString("any")
	case AddrPrefix:
		b.WriteString(a.Prefix.Addr().String())
		if a.Prefix.Bits() < a.Prefix.Addr().BitLen() {
			b.WriteString("/" + strconv.Itoa(a.Prefix.Bits()))
		}
	case AddrDyn:
		b.WriteString("(" + a.Name + ")")
	case AddrTable:
		b.WriteString("<" + a.Name + ">")
	}
}

// printPort is print_port/print_op (pfctl_parser.c 1.352) without -P:
// numbers, " port = 443", " port 1024:65535", " port 1 >< 5".
func printPort(b *strings.Builder, p Port) {
	if p.Op == "" {
		return
	}
	a, c := strconv.Itoa(int(p.A)), strconv.Itoa(int(p.B))
	b.WriteString(" port")
	switch p.Op {
	case "><", "<>":
		b.WriteString(" " + a + " " + p.Op + " " + c)
	case ":":
		b.WriteString(" " + a + ":" + c)
	default:
		b.WriteString(" " + p.Op + " " + a)
	}
}

// printPool is print_pool (pfctl_parser.c 1.352): "addr@if" when the pool
// has an interface and an address, just "if" when it has only the
// interface, then the pool type and options.
func printPool(b *strings.Builder, p *Pool, nat bool) {
	switch {
	case p.Host.If != "" && p.Host.Addr.Kind != AddrAny:
		printAddr(b, p.Host.Addr)
		b.WriteString("@" + p.Host.If)
	case p.Host.If != "":
		b.WriteString(p.Host.If)
	default:
		printAddr(b, p.Host.Addr)
	}
	if p.Type != "" {
		b.WriteString(" " + p.Type)
	}
	if p.Sticky {
		b.WriteString(" sticky-address")
	}
	if nat && p.StaticPort {
		b.WriteString(" static-port")
	}
}

// Print is print_rule (pfctl_parser.c 1.352) for a rule outside an anchor
// call, as "pfctl -a <anchor> -sr" prints it, without the newline.
func Print(r Rule) string {
	var b strings.Builder
	b.WriteString(r.Action)
	if r.Action == "block" {
		if r.Return {
			b.WriteString(" return")
		} else {
			b.WriteString(" drop")
		}
	}
	if r.Dir != "" {
		b.WriteString(" " + r.Dir)
	}
	if r.Log {
		b.WriteString(" log")
	}
	if r.Quick {
		b.WriteString(" quick")
	}
	if r.If != "" {
		if r.IfNot {
			b.WriteString(" on ! " + r.If)
		} else {
			b.WriteString(" on " + r.If)
		}
	}
	switch r.AF {
	case 4:
		b.WriteString(" inet")
	case 6:
		b.WriteString(" inet6")
	}
	if r.Proto != "" {
		b.WriteString(" proto " + r.Proto)
	}
	// print_fromto: "all" when both ends are any, unnegated, without ports.
	if r.Src.Kind == AddrAny && r.Dst.Kind == AddrAny && !r.Src.Neg && !r.Dst.Neg && r.SrcPort.Op == "" && r.DstPort.Op == "" {
		b.WriteString(" all")
	} else {
		b.WriteString(" from ")
		if r.Src.Neg {
			b.WriteString("! ")
		}
		printAddr(&b, r.Src)
		printPort(&b, r.SrcPort)
		b.WriteString(" to ")
		if r.Dst.Neg {
			b.WriteString("! ")
		}
		printAddr(&b, r.Dst)
		printPort(&b, r.DstPort)
	}
	if r.Flags != "" || r.FlagSet != "" {
		b.WriteString(" flags " + r.Flags + "/" + r.FlagSet)
	} else if (r.Action == "pass" || r.Action == "match") && (r.Proto == "" || r.Proto == "tcp") && r.Keep {
		b.WriteString(" flags any")
	}
	// "keep state" is printed only with state options, which the subset
	// has none of.
	if !r.Keep && r.Action == "pass" {
		b.WriteString(" no state")
	}
	if r.Label != "" {
		b.WriteString(` label "` + r.Label + `"`)
	}
	if r.Nat != nil {
		b.WriteString(" nat-to ")
		printPool(&b, r.Nat, true)
	}
	if r.RT != "" && r.Route != nil {
		b.WriteString(" " + r.RT + " ")
		printPool(&b, r.Route, false)
	}
	return b.String()
}

// PrintRules is "pfctl -a <anchor> -sr": one line per rule.
func PrintRules(rs *Ruleset) string {
	var b strings.Builder
	for _, r := range rs.Rules {
		b.WriteString(Print(r))
		b.WriteByte('\n')
	}
	return b.String()
}

// PrintTableEntries is "pfctl -a <anchor> -t <table> -T show" (print_addrx
// of pfctl_table.c 1.91 for each entry: "%c %c%s" with a blank feedback
// character and "!" for a negated entry, "/net" below the host length,
// "@ifname" when the entry has an interface).
func PrintTableEntries(t *Table) string {
	var b strings.Builder
	for _, e := range t.Entries {
		printEntry(&b, e, "  ", " ")
		b.WriteByte('\n')
	}
	return b.String()
}

// PrintTableDef is print_tabledef (pfctl_parser.c 1.352):
// "table <name> const { a b }", the form pfctl -nv prints for a table.
func PrintTableDef(t *Table) string {
	var b strings.Builder
	b.WriteString("table <" + t.Name + ">")
	if t.Const {
		b.WriteString(" const")
	}
	b.WriteString(" {")
	for _, e := range t.Entries {
		printEntry(&b, e, " ", "")
	}
	b.WriteString(" }")
	return b.String()
}

// printEntry writes a table entry: lead, then "!" for a negated entry or
// pad for another, the address, and "@ifname" when the entry has an
// interface.
func printEntry(b *strings.Builder, e PoolHost, lead, pad string) {
	b.WriteString(lead)
	if e.Addr.Neg {
		b.WriteByte('!')
	} else {
		b.WriteString(pad)
	}
	a := e.Addr
	a.Neg = false
	printAddr(b, a)
	if e.If != "" {
		b.WriteString("@" + e.If)
	}
}

// canon is a rule printed with every pool table it refers to replaced by
// its entries, so that two loads of the same rules compare equal whatever
// random names pfctl gave their automatic tables.
func canon(rs *Ruleset, r Rule) string {
	for _, p := range []*Pool{r.Nat, r.Route} {
		if p == nil || p.Host.Addr.Kind != AddrTable {
			continue
		}
		t := rs.Table(p.Host.Addr.Name)
		if t == nil {
			continue
		}
		var es []string
		for _, e := range t.Entries {
			var b strings.Builder
			printAddr(&b, e.Addr)
			if e.If != "" {
				b.WriteString("@" + e.If)
			}
			es = append(es, b.String())
		}
		slices.Sort(es)
		cp := *p
		cp.Host = PoolHost{Addr: Addr{Kind: AddrTable, Name: "{ " + strings.Join(es, ", ") + " }"}}
		if p == r.Nat {
			r.Nat = &cp
		} else {
			r.Route = &cp
		}
	}
	return Print(r)
}

// Canonical returns the rules of rs in order, each printed as pfctl prints
// it but with tables of pools expanded to their entries.
func Canonical(rs *Ruleset) []string {
	out := make([]string, len(rs.Rules))
	for i, r := range rs.Rules {
		out[i] = canon(rs, r)
	}
	return out
}
