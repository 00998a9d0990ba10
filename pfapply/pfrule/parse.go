package pfrule

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// tcpflags is pfctl_parser.c's "FSRPAUEW": bit i is flag tcpflags[i].
const tcpflags = "FSRPAUEW"

// parseFlags is parse_flags (pfctl_parser.c 1.352): -1 for a bad flag, the
// all-flags mask (PF_TH_ALL, 0xFF) for an empty string.
func parseFlags(s string) int {
	f := 0
	for i := 0; i < len(s); i++ {
		j := strings.IndexByte(tcpflags, s[i])
		if j < 0 {
			return -1
		}
		f |= 1 << j
	}
	if f == 0 {
		return 0xff
	}
	return f
}

func printFlags(f uint8) string {
	var b strings.Builder
	for i := 0; i < len(tcpflags); i++ {
		if f&(1<<i) != 0 {
			b.WriteByte(tcpflags[i])
		}
	}
	return b.String()
}

// hostSpec is one host of a from/to list or pool before expansion.
type hostSpec struct {
	addr Addr
	ifn  string // legacy (if addr) / printed addr@if / legacy bare interface
}

type poolSpec struct {
	hosts  []hostSpec
	typ    string
	sticky bool
	static bool
	line   int
}

type ifItem struct {
	name string
	not  bool
}

// ruleSpec is one pf rule statement as parsed, before expand_rule.
type ruleSpec struct {
	action   string
	ret      bool
	dir      string
	log      bool
	quick    bool
	ifs      []ifItem
	af       int
	protos   []string
	src, dst []hostSpec // nil: any
	sports   []Port
	dports   []Port
	flagsSet bool
	flags    uint8
	flagset  uint8
	keepSet  bool
	keep     bool
	label    *string
	nat      *poolSpec
	rt       string
	route    *poolSpec
	line     int
}

type tableSpec struct {
	name    string
	isConst bool
	hosts   []hostSpec
	line    int
}

// parser walks the tokens of one statement.
type parser struct {
	toks    []token
	i       int
	dialect Dialect
}

// synErr is a parse.y yyerror message for a statement's line.
type synErr struct {
	line int
	msg  string
}

func (e *synErr) Error() string { return fmt.Sprintf("%d: %s", e.line, e.msg) }

func (p *parser) line() int {
	if p.i < len(p.toks) {
		return p.toks[p.i].line
	}
	if len(p.toks) > 0 {
		return p.toks[len(p.toks)-1].line
	}
	return 0
}

func (p *parser) fail(format string, a ...any) error {
	return &synErr{p.line(), fmt.Sprintf(format, a...)}
}

func (p *parser) syntax() error { return p.fail("syntax error") }

func (p *parser) peek() (token, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return token{}, false
}

// word reports whether the next token is the word (keyword) w.
func (p *parser) word(w string) bool {
	t, ok := p.peek()
	return ok && t.kind == tWord && t.text == w
}

func (p *parser) punct(c string) bool {
	t, ok := p.peek()
	return ok && t.kind == tPunct && t.text == c
}

func (p *parser) accept(w string) bool {
	if p.word(w) || p.punct(w) {
		p.i++
		return true
	}
	return false
}

func (p *parser) next() (token, error) {
	t, ok := p.peek()
	if !ok {
		return t, p.syntax()
	}
	p.i++
	return t, nil
}

// keywords is parse.y 1.719's lookup() table: a word in it is never a
// STRING, so "pass from label" is a syntax error, not a host.
var keywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`af-to all allow-opts anchor antispoof any bandwidth binat-to bitmask block
block-policy burst code debug default delay divert-packet divert-reply divert-to drop dup-to file
fingerprints flags floating flows flush for fragment from global group hostid icmp-type icmp6-type
if-bound in include inet inet6 keep label least-states limit load log loginterface match matches max
max-mss max-pkt-rate max-src-conn max-src-conn-rate max-src-nodes max-src-states min min-ttl modulate
nat-to no no-df no-route no-sync on once optimization os out overload parent pass pflow port prio
probability proto qlimit quantum queue quick random random-id rdomain rdr-to reassemble received-on
reply-to return return-icmp return-icmp6 return-rst round-robin route route-to rtable rule
ruleset-optimization scrub set skip sloppy source-hash source-track state state-defaults state-policy
static-port sticky-address syncookies synproxy table tag tagged timeout to tos ttl urpf-failed user weight`) {
		keywords[k] = true
	}
}

// str takes a STRING token: a quoted string or a word that is not a keyword.
func (p *parser) str() (string, error) {
	t, ok := p.peek()
	if !ok || t.kind == tPunct || t.kind == tWord && keywords[t.text] {
		return "", p.syntax()
	}
	p.i++
	return t.text, nil
}

// name takes an interface or table name: an unquoted word. pfctl would also
// take a quoted string, which print_rule could not print back unambiguously.
func (p *parser) name() (string, error) {
	t, ok := p.peek()
	if ok && t.kind == tString {
		return "", p.fail("quoted name %q is outside the subset this emulator models", t.text)
	}
	return p.str()
}

// parseStatement parses one statement into a rule or a table definition.
func (p *parser) parseStatement() (*ruleSpec, *tableSpec, error) {
	t, _ := p.peek()
	switch {
	case p.word("pass"), p.word("match"), p.word("block"):
		r, err := p.parseRule()
		return r, nil, err
	case p.word("table"):
		ts, err := p.parseTable()
		return nil, ts, err
	case t.kind == tWord && keywords[t.text]:
		return nil, nil, p.fail("%q statements are outside the subset this emulator models", t.text)
	}
	return nil, nil, p.syntax()
}

func (p *parser) parseRule() (*ruleSpec, error) {
	r := &ruleSpec{line: p.line()}
	t, _ := p.next()
	r.action = t.text
	if r.action == "block" {
		switch {
		case p.accept("drop"):
		case p.accept("return"):
			r.ret = true
		case p.word("return-rst"), p.word("return-icmp"), p.word("return-icmp6"):
			return nil, p.fail("%q is outside the subset this emulator models", p.toks[p.i].text)
		}
	}
	switch {
	case p.accept("in"):
		r.dir = "in"
	case p.accept("out"):
		r.dir = "out"
	}
	// logquick: [log] [quick] | quick log
	for range 2 {
		switch {
		case p.word("log") && !r.log:
			p.i++
			r.log = true
			if p.punct("(") {
				return nil, p.fail("log options are outside the subset this emulator models")
			}
		case p.word("quick") && !r.quick:
			p.i++
			r.quick = true
		}
	}
	if p.accept("on") {
		items, err := list(p, func() (ifItem, error) {
			not := p.accept("!")
			if p.word("rdomain") {
				return ifItem{}, p.fail("on rdomain is outside the subset this emulator models")
			}
			name := "any"
			if !p.accept("any") {
				n, err := p.name()
				if err != nil {
					return ifItem{}, err
				}
				name = n
			}
			if len(name) >= 16 {
				return ifItem{}, p.fail("interface name too long")
			}
			return ifItem{name, not}, nil
		})
		if err != nil {
			return nil, err
		}
		r.ifs = items
	}
	switch {
	case p.accept("inet"):
		r.af = 4
	case p.accept("inet6"):
		r.af = 6
	}
	if p.accept("proto") {
		protos, err := list(p, func() (string, error) {
			t, err := p.next()
			if err != nil {
				return "", err
			}
			if t.kind != tWord {
				return "", p.syntax()
			}
			return protoName(t.text, p)
		})
		if err != nil {
			return nil, err
		}
		r.protos = protos
	}
	if p.accept("all") {
		// fromto: ALL
	} else {
		if p.accept("from") {
			if err := p.ipportspec(&r.src, &r.sports); err != nil {
				return nil, err
			}
		}
		if p.word("os") {
			return nil, p.fail("os fingerprints are outside the subset this emulator models")
		}
		if p.accept("to") {
			if err := p.ipportspec(&r.dst, &r.dports); err != nil {
				return nil, err
			}
		}
	}
	return r, p.filterOpts(r)
}

// protoName is protoval: a name from /etc/protocols (the ones a gateway
// rule uses) or a number 1-255.
func protoName(s string, p *parser) (string, error) {
	switch s {
	case "tcp", "udp", "icmp", "icmp6", "ipv6-icmp", "gre", "esp", "ah", "carp", "pfsync", "ospf", "igmp":
		if s == "ipv6-icmp" {
			s = "icmp6"
		}
		return s, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return "", p.fail("unknown protocol %s", s)
	}
	if n < 0 || n > 255 {
		return "", p.fail("protocol outside range")
	}
	if n == 0 {
		return "", p.fail("proto 0 cannot be used")
	}
	switch n {
	case 6:
		return "tcp", nil
	case 17:
		return "udp", nil
	case 1:
		return "icmp", nil
	case 58:
		return "icmp6", nil
	}
	return s, nil
}

// list parses item or '{' item [,] item ... '}'.
func list[T any](p *parser, item func() (T, error)) ([]T, error) {
	if !p.accept("{") {
		v, err := item()
		if err != nil {
			return nil, err
		}
		return []T{v}, nil
	}
	var out []T
	for {
		if p.accept("}") {
			if len(out) == 0 {
				return nil, p.syntax()
			}
			return out, nil
		}
		if len(out) > 0 {
			p.accept(",")
		}
		v, err := item()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// ipportspec: ipspec | ipspec port portspec | port portspec.
func (p *parser) ipportspec(hosts *[]hostSpec, ports *[]Port) error {
	if !p.word("port") {
		hs, err := p.ipspec()
		if err != nil {
			return err
		}
		*hosts = hs
	}
	if p.accept("port") {
		ps, err := list(p, p.portItem)
		if err != nil {
			return err
		}
		*ports = ps
	}
	return nil
}

// ipspec: any | xhost | '{' host_list '}' (a list holding "any" is any).
func (p *parser) ipspec() ([]hostSpec, error) {
	if p.accept("any") {
		return nil, nil
	}
	if p.punct("{") {
		hs, err := list(p, func() (hostSpec, error) {
			if p.accept("any") {
				return hostSpec{}, nil
			}
			return p.xhost()
		})
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			if h.addr.Kind == AddrAny && !h.addr.Neg {
				return nil, nil // host_list: any absorbs the list
			}
		}
		return hs, nil
	}
	h, err := p.xhost()
	if err != nil {
		return nil, err
	}
	return []hostSpec{h}, nil
}

func (p *parser) xhost() (hostSpec, error) {
	not := p.accept("!")
	if p.word("no-route") || p.word("urpf-failed") {
		return hostSpec{}, p.fail("%s is outside the subset this emulator models", p.toks[p.i].text)
	}
	h, err := p.host()
	h.addr.Neg = not
	return h, err
}

// host: STRING ['/' NUMBER] | '(' ifname ')' ['/' NUMBER] | '<' table '>'.
// A STRING must be an address here: pfctl would also take an interface
// name (its addresses) or a DNS name, which this emulator cannot know.
func (p *parser) host() (hostSpec, error) {
	switch {
	case p.accept("("):
		name, err := p.name()
		if err != nil {
			return hostSpec{}, err
		}
		if !p.accept(")") {
			return hostSpec{}, p.syntax()
		}
		base := name
		if i := strings.IndexByte(base, ':'); i >= 0 {
			for _, m := range strings.Split(base[i+1:], ":") {
				switch m {
				case "network", "broadcast", "peer", "0":
				default:
					return hostSpec{}, p.fail("interface %s has bad modifier", name)
				}
			}
			base = base[:i]
		}
		if base == "" || !(base[0] >= 'a' && base[0] <= 'z' || base[0] >= 'A' && base[0] <= 'Z') {
			return hostSpec{}, p.fail("invalid interface name '%s'", name)
		}
		if len(base) >= 16 {
			return hostSpec{}, p.fail("interface name too long")
		}
		if p.punct("/") {
			return hostSpec{}, p.fail("a mask on a dynamic address is outside the subset this emulator models")
		}
		return hostSpec{addr: Addr{Kind: AddrDyn, Name: name}}, nil
	case p.accept("<"):
		name, err := p.name()
		if err != nil {
			return hostSpec{}, err
		}
		if !p.accept(">") {
			return hostSpec{}, p.syntax()
		}
		if len(name) >= 32 {
			return hostSpec{}, p.fail("table name '%s' too long", name)
		}
		return hostSpec{addr: Addr{Kind: AddrTable, Name: name}}, nil
	}
	s, err := p.str()
	if err != nil {
		return hostSpec{}, err
	}
	ifn := ""
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s, ifn = s[:i], s[i+1:]
	}
	bits := -1
	if p.accept("/") {
		t, err := p.next()
		if err != nil {
			return hostSpec{}, err
		}
		n, err := strconv.Atoi(t.text)
		if err != nil || n < 0 || n > 128 {
			return hostSpec{}, p.fail("could not parse host specification")
		}
		bits = n
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return hostSpec{}, p.fail("no IP address found for %s (interface and host names are outside the subset this emulator models)", s)
	}
	a = a.Unmap()
	if bits < 0 {
		bits = a.BitLen()
	}
	if bits > a.BitLen() {
		return hostSpec{}, p.fail("netmask %d invalid for IPv4 address", bits)
	}
	// set_ipmask masks off the host bits.
	pfx := netip.PrefixFrom(a, bits).Masked()
	if bits == 0 {
		return hostSpec{addr: Addr{Kind: AddrAny}, ifn: ifn}, nil
	}
	return hostSpec{addr: Addr{Kind: AddrPrefix, Prefix: pfx}, ifn: ifn}, nil
}

// portItem: portrange | unaryop portrange | portrange PORTBINARY portrange.
func (p *parser) portItem() (Port, error) {
	op := ""
	for _, o := range []string{"=", "!=", "<", "<=", ">", ">="} {
		if p.punct(o) {
			op = o
			p.i++
			break
		}
	}
	a, b, rng, err := p.portRange()
	if err != nil {
		return Port{}, err
	}
	if op != "" {
		if rng {
			return Port{}, p.fail("':' cannot be used with an other port operator")
		}
		return Port{Op: op, A: a}, nil
	}
	if p.punct("<>") || p.punct("><") {
		op = p.toks[p.i].text
		p.i++
		c, _, rng2, err := p.portRange()
		if err != nil {
			return Port{}, err
		}
		if rng || rng2 {
			return Port{}, p.fail("':' cannot be used with an other port operator")
		}
		if op == "><" && a >= c || op == "<>" && a > c {
			return Port{}, p.fail("invalid port range")
		}
		return Port{Op: op, A: a, B: c}, nil
	}
	if rng {
		if a > b {
			return Port{}, p.fail("invalid port range")
		}
		return Port{Op: ":", A: a, B: b}, nil
	}
	return Port{Op: "=", A: a}, nil
}

// portRange is parseport with PPORT_RANGE: "n" or "n:m" (a range of one
// port is that port). Service names need /etc/services: not modelled.
func (p *parser) portRange() (a, b uint16, rng bool, err error) {
	t, err := p.next()
	if err != nil {
		return 0, 0, false, err
	}
	num := func(s string) (uint16, error) {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0, p.fail("unknown port %s", s)
		}
		if n > 65535 {
			return 0, p.fail("illegal port value %d", n)
		}
		return uint16(n), nil
	}
	lo, hi, isRange := strings.Cut(t.text, ":")
	if a, err = num(lo); err != nil {
		return 0, 0, false, err
	}
	if !isRange {
		return a, 0, false, nil
	}
	if b, err = num(hi); err != nil {
		return 0, 0, false, err
	}
	if a == b {
		return a, 0, false, nil
	}
	return a, b, true, nil
}

func (p *parser) filterOpts(r *ruleSpec) error {
	for p.i < len(p.toks) {
		switch {
		case p.accept("flags"):
			if r.flagsSet {
				return p.fail("flags cannot be redefined")
			}
			r.flagsSet = true
			if p.accept("any") {
				break
			}
			b1 := 0
			if !p.punct("/") {
				s, err := p.str()
				if err != nil {
					return err
				}
				if b1 = parseFlags(s); b1 < 0 {
					return p.fail("bad flags %s", s)
				}
			}
			if !p.accept("/") {
				return p.syntax()
			}
			s, err := p.str()
			if err != nil {
				return err
			}
			b2 := parseFlags(s)
			if b2 < 0 {
				return p.fail("bad flags %s", s)
			}
			r.flags, r.flagset = uint8(b1), uint8(b2)
			if r.flags&r.flagset != r.flags {
				return p.fail("flags always false")
			}
		case p.word("keep"), p.word("no"), p.word("modulate"), p.word("synproxy"):
			w := p.toks[p.i].text
			p.i++
			if !p.accept("state") {
				return p.syntax()
			}
			if r.keepSet {
				return p.fail("modulate or keep cannot be redefined")
			}
			if w == "modulate" || w == "synproxy" {
				return p.fail("%s state is outside the subset this emulator models", w)
			}
			if p.punct("(") {
				return p.fail("state options are outside the subset this emulator models")
			}
			r.keepSet, r.keep = true, w == "keep"
		case p.accept("label"):
			if r.label != nil {
				return p.fail("label cannot be redefined")
			}
			s, err := p.str()
			if err != nil {
				return err
			}
			if strings.ContainsAny(s, "\"\n") {
				return p.fail("a label with a quote or newline is outside the subset this emulator models")
			}
			r.label = &s
		case p.accept("nat-to"):
			if r.nat != nil {
				return p.fail("cannot respecify nat-to/binat-to")
			}
			ps, err := p.redirPool()
			if err != nil {
				return err
			}
			r.nat = ps
		case p.word("route-to"), p.word("reply-to"), p.word("dup-to"):
			kw := p.toks[p.i].text
			p.i++
			if r.rt != "" {
				return p.fail("cannot respecify route-to/reply-to/dup-to")
			}
			ps, err := p.routeSpec()
			if err != nil {
				return err
			}
			r.rt, r.route = kw, ps
		default:
			t := p.toks[p.i]
			if t.kind == tWord && keywords[t.text] {
				return p.fail("%q is outside the subset this emulator models", t.text)
			}
			return p.syntax()
		}
	}
	return nil
}

// redirPool is redirpool pool_opts for nat-to: redirspec, where a list may
// hold addresses only ("only addresses can be listed for redirection
// pools "). A port or weight is outside the subset.
func (p *parser) redirPool() (*poolSpec, error) {
	ps := &poolSpec{line: p.line()}
	if p.punct("{") {
		hs, err := list(p, func() (hostSpec, error) {
			h, err := p.host()
			if err == nil && h.addr.Kind != AddrPrefix {
				err = p.fail("only addresses can be listed for redirection pools ")
			}
			return h, err
		})
		if err != nil {
			return nil, err
		}
		ps.hosts = hs
	} else {
		h, err := p.host()
		if err != nil {
			return nil, err
		}
		ps.hosts = []hostSpec{h}
	}
	if p.word("port") || p.word("weight") {
		return nil, p.fail("%s in a pool is outside the subset this emulator models", p.toks[p.i].text)
	}
	return ps, p.poolOpts(ps)
}

// routeSpec is routespec: in the OpenBSD dialect a redirspec (addresses,
// tables, (if:peer)); in the legacy dialect route_host of parse.y 1.584,
// an interface name or "(interface host)", alone or in a list; printed
// text also has "addr@if".
func (p *parser) routeSpec() (*poolSpec, error) {
	ps := &poolSpec{line: p.line()}
	var item func() (hostSpec, error)
	switch p.dialect {
	case Legacy:
		item = func() (hostSpec, error) {
			if p.accept("(") {
				ifn, err := p.name()
				if err != nil {
					return hostSpec{}, err
				}
				h, err := p.host()
				if err != nil {
					return hostSpec{}, err
				}
				if !p.accept(")") {
					return hostSpec{}, p.syntax()
				}
				h.ifn = ifn
				return h, nil
			}
			ifn, err := p.name()
			if err != nil {
				return hostSpec{}, err
			}
			if ifn == "" || !(ifn[0] >= 'a' && ifn[0] <= 'z' || ifn[0] >= 'A' && ifn[0] <= 'Z') {
				// No interface is named like this (ifa_exists fails).
				return hostSpec{}, p.fail("routeto: unknown interface %s", ifn)
			}
			return hostSpec{ifn: ifn}, nil
		}
	default:
		item = func() (hostSpec, error) {
			if p.dialect == Printed && p.punct("(") {
				// pfctl before 6.9 printed a single route host "(if addr)".
				save := p.i
				p.i++
				ifn, err := p.name()
				if err == nil && !p.punct(")") {
					h, err := p.host()
					if err == nil && p.accept(")") {
						h.ifn = ifn
						return h, nil
					}
				}
				p.i = save
			}
			if t, ok := p.peek(); ok && p.dialect == Printed && t.kind == tWord && !keywords[t.text] &&
				!strings.Contains(t.text, "@") && !isAddr(t.text) && !(p.i+1 < len(p.toks) && p.toks[p.i+1].text == "/") {
				// print_pool of a pool that is only an interface.
				p.i++
				return hostSpec{ifn: t.text}, nil
			}
			return p.host()
		}
	}
	hs, err := list(p, item)
	if err != nil {
		return nil, err
	}
	ps.hosts = hs
	if p.word("port") || p.word("weight") {
		return nil, p.fail("%s in a pool is outside the subset this emulator models", p.toks[p.i].text)
	}
	return ps, p.poolOpts(ps)
}

func (p *parser) poolOpts(ps *poolSpec) error {
	for {
		switch {
		case p.word("bitmask"), p.word("random"), p.word("round-robin"), p.word("least-states"), p.word("source-hash"):
			if ps.typ != "" {
				return p.fail("pool type cannot be redefined")
			}
			ps.typ = p.toks[p.i].text
			p.i++
			if ps.typ == "source-hash" {
				return p.fail("source-hash is outside the subset this emulator models")
			}
		case p.accept("static-port"):
			if ps.static {
				return p.fail("static-port cannot be redefined")
			}
			ps.static = true
		case p.accept("sticky-address"):
			if ps.sticky {
				return p.fail("sticky-address cannot be redefined")
			}
			ps.sticky = true
		default:
			return nil
		}
	}
}

// parseTable: table '<' name '>' [const|persist|counters]... ['{' hosts '}'].
func (p *parser) parseTable() (*tableSpec, error) {
	ts := &tableSpec{line: p.line()}
	p.i++
	if !p.accept("<") {
		return nil, p.syntax()
	}
	name, err := p.name()
	if err != nil {
		return nil, err
	}
	if !p.accept(">") {
		return nil, p.syntax()
	}
	if len(name) >= 32 {
		return nil, p.fail("table name too long, max 31 chars")
	}
	ts.name = name
	for p.i < len(p.toks) {
		switch {
		case p.punct("{"):
			p.i++
			for !p.accept("}") {
				if p.i >= len(p.toks) {
					return nil, p.syntax()
				}
				p.accept(",")
				if p.punct("}") {
					continue
				}
				h, err := p.xhost()
				if err != nil {
					return nil, err
				}
				switch h.addr.Kind {
				case AddrDyn:
					return nil, p.fail("dynamic addresses are not permitted inside tables")
				case AddrTable:
					return nil, p.fail("tables cannot contain tables")
				}
				if h.ifn != "" && p.dialect != Printed && p.dialect != Legacy {
					return nil, p.fail("@if is outside the subset this emulator models")
				}
				ts.hosts = append(ts.hosts, h)
			}
		default:
			s, err := p.str()
			if err != nil {
				return nil, err
			}
			switch s {
			case "const":
				ts.isConst = true
			case "persist", "counters":
			default:
				return nil, p.fail("invalid table option '%s'", s)
			}
		}
	}
	return ts, nil
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
