package nftapply

import (
	"net/netip"
	"strconv"
	"strings"
)

// ruleset is the table as data: Render writes it as the text
// `nft list table` prints (text), and the netlink rule swap encodes the
// same rules as nf_tables expressions (encode_linux.go). One structure,
// two renderings: the text stays the contract (golden files, gwctl render,
// the drift check), and the swap cannot say something the text does not.
type ruleset struct {
	name    string // the table, family inet
	comment string
	chains  []chain
}

// chain is one chain: a base chain has a type line, a regular one none.
type chain struct {
	name  string
	base  string // "type filter hook prerouting priority mangle; policy accept;"; "" for a regular chain
	rules []nftRule
}

// ruleKind is one of the rule forms Render writes.
type ruleKind int

const (
	ruleJump       ruleKind = iota + 1 // iifname "IF" ip saddr NET jump TARGET
	ruleSticky                         // ct state new ct mark 0 PROTO dport PORTS ct mark set M
	ruleBalance                        // ct state new ct mark 0 ct mark set M | numgen inc mod N map {...}
	ruleRestore                        // ct mark M | { M... } meta mark set ct mark
	ruleMasquerade                     // oifname "IF" ip saddr NET masquerade
	ruleSNAT                           // oifname "IF" ip saddr NET snat ip to ADDR
)

// nftRule is one rule of a chain.
type nftRule struct {
	kind    ruleKind
	ifname  string       // jump: iifname; masquerade, snat: oifname
	lan     netip.Prefix // jump, masquerade, snat: the source network (masked)
	target  string       // jump: the chain
	proto   string       // sticky: tcp or udp
	ports   []int        // sticky: sorted
	marks   []uint32     // sticky: the mark set; balance: one mark, or the numgen map's values; restore: the marks matched
	natTo   netip.Addr   // snat
	comment string       // "" for none
}

// text writes the table in the form `nft list table` prints.
func (t ruleset) text() string {
	var b strings.Builder
	b.Grow(1024 + 256*len(t.chains))
	b.WriteString("table inet " + t.name + " {\n")
	if t.comment != "" {
		b.WriteString("\tcomment \"" + t.comment + "\"\n")
	}
	for i, c := range t.chains {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("\tchain " + c.name + " {\n")
		if c.base != "" {
			b.WriteString("\t\t" + c.base + "\n")
		}
		for _, r := range c.rules {
			b.WriteString("\t\t" + r.text() + "\n")
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// text is the rule as nft lists it, without indentation or newline.
func (r nftRule) text() string {
	var b strings.Builder
	saddr := func() {
		if r.lan.Addr().Is4() {
			b.WriteString("ip saddr ")
		} else {
			b.WriteString("ip6 saddr ")
		}
		b.WriteString(r.lan.String())
	}
	switch r.kind {
	case ruleJump:
		b.WriteString("iifname \"" + r.ifname + "\" ")
		saddr()
		b.WriteString(" jump " + r.target)
	case ruleSticky:
		b.WriteString("ct state new ct mark 0x00000000 " + r.proto + " dport " + portSet(r.ports) + " ct mark set " + nftMark(r.marks[0]))
	case ruleBalance:
		b.WriteString("ct state new ct mark 0x00000000 ct mark set ")
		if len(r.marks) == 1 {
			b.WriteString(nftMark(r.marks[0]))
			break
		}
		b.WriteString("numgen inc mod " + strconv.Itoa(len(r.marks)) + " map { ")
		for k, m := range r.marks {
			if k > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(k) + " : " + nftMark(m))
		}
		b.WriteString(" }")
	case ruleRestore:
		b.WriteString("ct mark ")
		if len(r.marks) == 1 {
			b.WriteString(nftMark(r.marks[0]))
		} else {
			b.WriteString("{ ")
			for k, m := range r.marks {
				if k > 0 {
					b.WriteString(", ")
				}
				b.WriteString(nftMark(m))
			}
			b.WriteString(" }")
		}
		b.WriteString(" meta mark set ct mark")
	case ruleMasquerade, ruleSNAT:
		b.WriteString("oifname \"" + r.ifname + "\" ")
		saddr()
		if r.kind == ruleMasquerade {
			b.WriteString(" masquerade")
		} else if r.natTo.Is4() {
			b.WriteString(" snat ip to " + r.natTo.String())
		} else {
			b.WriteString(" snat ip6 to " + r.natTo.String())
		}
	}
	if r.comment != "" {
		b.WriteString(" comment \"" + r.comment + "\"")
	}
	return b.String()
}

// chainRules splits a table's text (as nft lists it) into its skeleton —
// every line that is not a rule inside a chain: the table, its comment
// and flags, the chains with their type lines, sets, anything else — and
// the rule lines of each chain. Two texts with the same skeleton differ
// only in rules, which a rule swap can change without touching the rest.
func chainRules(text string) (skeleton string, rules map[string][]string) {
	var sk strings.Builder
	rules = map[string][]string{}
	cur := ""
	for _, line := range strings.SplitAfter(text, "\n") {
		switch {
		case strings.HasPrefix(line, "\tchain ") && strings.HasSuffix(line, " {\n"):
			cur = strings.TrimSuffix(strings.TrimPrefix(line, "\tchain "), " {\n")
			rules[cur] = []string{}
		case cur != "" && line == "\t}\n":
			cur = ""
		case cur != "" && strings.HasPrefix(line, "\t\t") && !strings.HasPrefix(line, "\t\ttype ") &&
			!strings.HasPrefix(line, "\t\tcomment ") && !strings.HasPrefix(line, "\t\tpolicy "):
			rules[cur] = append(rules[cur], line)
			continue
		}
		sk.WriteString(line)
	}
	return sk.String(), rules
}
