package pfrule

import (
	"errors"
	"fmt"
	"strings"
)

// Options says how pfctl loads a file.
type Options struct {
	Dialect Dialect
	// TableID is pf_opt_create_table's table_identifier (arc4random() once
	// per pfctl run): automatic tables are named __automatic_<%x>_<n>, n
	// counting from 0 within the run.
	TableID uint32
	// Interfaces, when not nil, are the interfaces that exist: the legacy
	// route_host checks ifa_exists ("routeto: unknown interface %s").
	Interfaces []string
	// File names the file in error messages (parse.y yyerror: "%s:%d: ").
	File string
}

// Error is every message pfctl would print for a file it refuses, in order,
// as "file:line: message".
type Error struct {
	Msgs []string
}

func (e *Error) Error() string { return strings.Join(e.Msgs, "\n") }

// ErrRefused is wrapped by every *Error Compile returns.
var ErrRefused = errors.New("pf rules refused")

func (e *Error) Unwrap() error { return ErrRefused }

// Compile parses text and loads it as pfctl -a <anchor> -f would: every
// statement is parsed (errors are collected, not stopped at) and each rule
// expanded by expand_rule. A file with any error loads nothing.
func Compile(text string, o Options) (*Ruleset, error) {
	file := o.File
	if file == "" {
		file = "stdin"
	}
	e := &Error{}
	report := func(line int, msg string) { e.Msgs = append(e.Msgs, fmt.Sprintf("%s:%d: %s", file, line, msg)) }
	toks, err := lex(text)
	if err != nil {
		var line int
		var msg string
		if _, scanErr := fmt.Sscanf(err.Error(), "%d:", &line); scanErr == nil {
			msg = strings.TrimSpace(strings.SplitN(err.Error(), ":", 2)[1])
		} else {
			msg = err.Error()
		}
		report(line, msg)
		return nil, e
	}
	c := &compiler{o: o, rs: &Ruleset{}, report: report}
	var specs []*ruleSpec
	for _, st := range statements(toks) {
		p := &parser{toks: st, dialect: o.Dialect}
		r, ts, err := p.parseStatement()
		if err != nil {
			var se *synErr
			if errors.As(err, &se) {
				report(se.line, se.msg)
			} else {
				report(st[0].line, err.Error())
			}
			continue
		}
		if ts != nil {
			c.defineTable(ts)
			continue
		}
		specs = append(specs, r)
	}
	for _, r := range specs {
		c.expand(r)
	}
	if len(e.Msgs) > 0 {
		return nil, e
	}
	return c.rs, nil
}

type compiler struct {
	o        Options
	rs       *Ruleset
	report   func(line int, msg string)
	tablenum int
}

func (c *compiler) defineTable(ts *tableSpec) {
	if c.rs.Table(ts.name) != nil {
		c.report(ts.line, fmt.Sprintf("cannot define table %s: Device busy", ts.name))
		return
	}
	t := Table{Name: ts.name, Const: ts.isConst, Automatic: strings.HasPrefix(ts.name, AutomaticPrefix)}
	for _, h := range ts.hosts {
		t.Entries = append(t.Entries, PoolHost{Addr: h.addr, If: h.ifn})
	}
	sortEntries(t.Entries)
	c.rs.Tables = append(c.rs.Tables, t)
}

// decideAF is decide_address_family: the family all hosts share, else 0.
func decideAF(hs []hostSpec, af int) int {
	if af != 0 || len(hs) == 0 {
		return af
	}
	f := hs[0].addr.af()
	for _, h := range hs[1:] {
		if h.addr.af() != f {
			return 0
		}
	}
	return f
}

func (c *compiler) ifExists(name string) bool {
	if c.o.Interfaces == nil {
		return true
	}
	for _, i := range c.o.Interfaces {
		if i == name {
			return true
		}
	}
	return false
}

// expand is the pfrule action and expand_rule of parse.y 1.719 for one
// statement.
func (c *compiler) expand(s *ruleSpec) {
	var errs []string
	fail := func(msg string) { errs = append(errs, msg) }
	defer func() {
		for _, m := range errs {
			c.report(s.line, m)
		}
	}()
	r := Rule{Action: s.action, Return: s.ret, Dir: s.dir, Log: s.log, Quick: s.quick, AF: s.af, Line: s.line}
	if s.label != nil {
		if len(*s.label) >= 64 {
			fail(fmt.Sprintf("rule label too long (max %d chars)", 63))
			return
		}
		r.Label = *s.label
	}
	if s.flagsSet && (s.flags != 0 || s.flagset != 0) && len(s.protos) > 0 {
		tcp := false
		for _, p := range s.protos {
			tcp = tcp || p == "tcp"
		}
		if !tcp {
			fail("flags only apply to tcp")
			return
		}
	}
	// 'keep state' by default on pass rules.
	r.Keep = s.keep
	if !s.keepSet && s.action == "pass" {
		r.Keep = true
	}
	// 'flags S/SA' by default on stateful rules.
	flags, flagset := s.flags, s.flagset
	if s.action == "pass" && !s.flagsSet && r.Keep {
		flags, flagset = uint8(parseFlags("S")), uint8(parseFlags("SA"))
	}
	af := decideAF(s.src, r.AF)
	af = decideAF(s.dst, af)
	if s.rt != "" {
		if s.rt != "dup-to" && s.dir == "" {
			fail("direction must be explicit with rules that specify routing")
			return
		}
	}
	one := func(h []hostSpec) []hostSpec {
		if len(h) == 0 {
			return []hostSpec{{}}
		}
		return h
	}
	onePort := func(p []Port) []Port {
		if len(p) == 0 {
			return []Port{{}}
		}
		return p
	}
	ifs := s.ifs
	if len(ifs) == 0 {
		ifs = []ifItem{{}}
	}
	protos := s.protos
	if len(protos) == 0 {
		protos = []string{""}
	}
	added := 0
	for _, ifi := range ifs {
		for _, proto := range protos {
			for _, src := range one(s.src) {
				for _, dst := range one(s.dst) {
					for _, sp := range onePort(s.sports) {
						for _, dp := range onePort(s.dports) {
							nr := r
							nr.AF = af
							var rerr []string
							if s.nat != nil {
								nr.Nat = c.collapse(s.nat, &nr, false, &rerr)
							}
							if s.route != nil {
								nr.RT = s.rt
								nr.Route = c.collapse(s.route, &nr, true, &rerr)
							}
							if src.ifn != "" || dst.ifn != "" {
								rerr = append(rerr, "@if syntax not permitted in from or to")
							}
							sa, da := src.addr.af(), dst.addr.af()
							if nr.AF != 0 && sa != 0 && nr.AF != sa || nr.AF != 0 && da != 0 && nr.AF != da || sa != 0 && da != 0 && sa != da {
								if len(rerr) > 0 {
									errs = append(errs, rerr...)
								}
								continue
							}
							if nr.AF == 0 {
								nr.AF = sa
								if nr.AF == 0 {
									nr.AF = da
								}
							}
							if ifi.name != "" {
								nr.If, nr.IfNot = ifi.name, ifi.not
							}
							nr.Proto = proto
							nr.Src, nr.Dst = src.addr, dst.addr
							nr.SrcPort, nr.DstPort = sp, dp
							if proto != "" && proto != "tcp" {
								nr.Flags, nr.FlagSet = "", ""
							} else {
								nr.Flags, nr.FlagSet = printFlags(flags), printFlags(flagset)
							}
							c.applyPool(nr.Nat, s.nat, &rerr)
							c.applyPool(nr.Route, s.route, &rerr)
							rerr = append(rerr, consistent(&nr)...)
							if len(rerr) > 0 {
								errs = append(errs, rerr...)
								errs = append(errs, "skipping rule due to errors")
								continue
							}
							c.rs.Rules = append(c.rs.Rules, nr)
							added++
						}
					}
				}
			}
		}
	}
	if added == 0 && len(errs) == 0 {
		fail("rule expands to no valid combination")
	}
}

// collapse is collapse_redirspec: the pool's hosts that fit the rule's
// address family become the pool address, two or more of them an automatic
// const table.
func (c *compiler) collapse(ps *poolSpec, r *Rule, routing bool, errs *[]string) *Pool {
	kind := "translation"
	if routing {
		kind = "routing"
	}
	pool := &Pool{Type: ps.typ, Sticky: ps.sticky, StaticPort: ps.static}
	var kept []hostSpec
	af := 0
	for _, h := range ps.hosts {
		if routing && c.o.Dialect == OpenBSD && h.addr.Kind == AddrDyn && !strings.HasSuffix(h.addr.Name, ":peer") {
			*errs = append(*errs, "route spec requires :peer with dynamic interface addresses")
			return nil
		}
		if routing && c.o.Dialect == Legacy && !c.ifExists(h.ifn) {
			*errs = append(*errs, fmt.Sprintf("routeto: unknown interface %s", h.ifn))
			return nil
		}
		if h.ifn != "" && c.o.Dialect == OpenBSD {
			*errs = append(*errs, "@if not permitted for "+kind)
			return nil
		}
		if h.ifn != "" && !routing && c.o.Dialect == Legacy {
			*errs = append(*errs, "@if not permitted for translation")
			return nil
		}
		if hf := h.addr.af(); hf != 0 {
			if r.AF != 0 && r.AF != hf {
				continue
			}
			if r.AF == 0 && af != 0 && af != hf {
				*errs = append(*errs, fmt.Sprintf("%s spec contains addresses with different address families", kind))
				return nil
			}
			if r.AF == 0 && af == 0 {
				af = hf
			}
		}
		kept = append(kept, h)
	}
	if r.AF == 0 && af != 0 {
		r.AF = af
	}
	switch {
	case len(kept) == 0:
		*errs = append(*errs, fmt.Sprintf("af mismatch in %s spec", kind))
		return nil
	case len(kept) == 1:
		pool.Host = PoolHost{Addr: kept[0].addr, If: kept[0].ifn}
		return pool
	}
	if ps.typ != "" && ps.typ != "round-robin" && ps.typ != "random" && ps.typ != "least-states" {
		*errs = append(*errs, "pool type is not valid for multiple translation or routing addresses")
		return nil
	}
	t := Table{Name: fmt.Sprintf("%s%x_%d", AutomaticPrefix, c.o.TableID, c.tablenum), Const: true, Automatic: true}
	c.tablenum++
	for _, h := range kept {
		if h.addr.Kind != AddrPrefix {
			*errs = append(*errs, "multiple tables or dynamic interfaces not supported for translation or routing")
			return nil
		}
		t.Entries = append(t.Entries, PoolHost{Addr: h.addr, If: h.ifn})
	}
	sortEntries(t.Entries)
	c.rs.Tables = append(c.rs.Tables, t)
	pool.Host = PoolHost{Addr: Addr{Kind: AddrTable, Name: t.Name}}
	return pool
}

// applyPool is apply_redirspec's pool type: round-robin when none was given
// and the pool is a table or an interface that may have several addresses
// (DYNIF_MULTIADDR: no ":0", or a group name not ending in a digit).
func (c *compiler) applyPool(p *Pool, ps *poolSpec, errs *[]string) {
	if p == nil {
		return
	}
	multi := p.Host.Addr.Kind == AddrTable || p.Host.Addr.Kind == AddrDyn && dynMultiAddr(p.Host.Addr.Name)
	if p.Type == "" && multi {
		p.Type = "round-robin"
	}
	dyn := p.Type == "round-robin" || p.Type == "random" || p.Type == "least-states"
	if !dyn && p.Host.Addr.Kind == AddrTable {
		*errs = append(*errs, "tables are not supported by pool type")
	}
	if !dyn && p.Host.Addr.Kind == AddrDyn && dynMultiAddr(p.Host.Addr.Name) {
		*errs = append(*errs, fmt.Sprintf("interface (%s) is not supported by pool type", p.Host.Addr.Name))
	}
}

func dynMultiAddr(name string) bool {
	if !strings.Contains(name, ":0") {
		return true
	}
	base, _, _ := strings.Cut(name, ":")
	last := base[len(base)-1]
	return last < '0' || last > '9'
}

// consistent is rule_consistent for the fields the subset has.
func consistent(r *Rule) []string {
	var p []string
	if r.Proto != "tcp" && r.Proto != "udp" && (r.SrcPort.Op != "" || r.DstPort.Op != "") {
		p = append(p, "port only applies to tcp/udp")
	}
	if r.Action != "pass" && r.Keep {
		p = append(p, "keep state is great, but only for pass rules")
	}
	if r.RT != "" && !r.Keep {
		p = append(p, "route-to, reply-to and dup-to require keep state")
	}
	if r.Nat != nil && r.Action != "match" && !r.Keep {
		p = append(p, "nat-to and rdr-to require keep state")
	}
	if r.Dir == "" && r.Nat != nil {
		p = append(p, "nat-to and rdr-to require a direction")
	}
	switch r.Action {
	case "match":
		if r.RT != "" {
			p = append(p, "route-to, reply-to and dup-to are not supported on match rules")
		}
	case "block":
		if r.RT != "" {
			p = append(p, "route-to, reply-to and dup-to are not supported on block rules")
		}
	}
	return p
}
