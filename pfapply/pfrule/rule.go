package pfrule

import (
	"net/netip"
	"slices"
	"strings"
)

// Dialect is the pf.conf grammar of the pfctl that loads a file.
type Dialect int

const (
	// OpenBSD is pfctl of OpenBSD 6.9 and later (parse.y 1.719): route-to
	// takes addresses; "(if addr)" and "addr@if" are refused for routing.
	OpenBSD Dialect = iota
	// Legacy is pfctl before 6.9 (parse.y 1.584 route_host): route-to takes
	// an interface or "(interface address)".
	Legacy
	// Printed accepts what pfctl prints back (both pool forms, "addr@if",
	// references to tables defined in the same text); for reading anchors
	// back, not for loading.
	Printed
)

// AddrKind is the type of a pf_addr_wrap.
type AddrKind int

// Address kinds (PF_ADDR_ADDRMASK with a zero mask is Any).
const (
	AddrAny    AddrKind = iota // any
	AddrPrefix                 // an address with a mask
	AddrDyn                    // (interface[:modifiers])
	AddrTable                  // <table>
)

// Addr is one address of a rule or pool.
type Addr struct {
	Kind   AddrKind
	Prefix netip.Prefix // AddrPrefix
	Name   string       // AddrDyn: interface with modifiers ("fxp0", "fxp0:peer"); AddrTable: table name
	Neg    bool         // "!" before it (from/to only)
}

// af is the address family of a (0 when it has none of its own).
func (a Addr) af() int {
	if a.Kind == AddrPrefix {
		if a.Prefix.Addr().Is4() {
			return 4
		}
		return 6
	}
	return 0
}

// Port is a port match: Op is "" (none), "=", "!=", "<", "<=", ">", ">=",
// "><", "<>" or ":" (range).
type Port struct {
	Op   string
	A, B uint16
}

// PoolHost is one address of a nat-to or route-to pool, with the interface
// of the legacy "(if addr)" form or of a printed "addr@if" ("" otherwise).
// A legacy "route-to fxp0" is a host with If set and Addr the zero Addr.
type PoolHost struct {
	Addr Addr
	If   string
}

// Pool is a nat-to or route-to target: one host (which may be a table or an
// interface) and the pool options.
type Pool struct {
	Host       PoolHost
	Type       string // "", "round-robin", "random", "source-hash", "least-states", "bitmask"
	Sticky     bool   // sticky-address
	StaticPort bool   // static-port (nat-to)
}

// Rule is a rule as the kernel holds it after pfctl loaded it: defaults
// applied, lists expanded, multi-host pools collapsed into tables.
type Rule struct {
	Action  string // pass, match, block
	Return  bool   // block return (else block drop)
	Dir     string // in, out, or "" (both)
	Log     bool
	Quick   bool
	IfNot   bool
	If      string
	AF      int    // 0, 4 or 6
	Proto   string // "", tcp, udp, icmp, icmp6 or a number
	Src     Addr
	SrcPort Port
	Dst     Addr
	DstPort Port
	Flags   string // e.g. "S"; Flags and FlagSet empty: no flags
	FlagSet string // e.g. "SA"
	Keep    bool   // keep state
	Label   string
	Nat     *Pool  // nat-to
	RT      string // route-to, reply-to, dup-to or ""
	Route   *Pool
	Line    int // line of the statement it came from
}

// Table is a table definition (automatic or written) and its entries in the
// order pfctl shows them.
type Table struct {
	Name      string
	Const     bool
	Automatic bool // created by collapse_redirspec
	Entries   []PoolHost
}

// Ruleset is what one pfctl -a <anchor> -f <file> loads.
type Ruleset struct {
	Rules  []Rule
	Tables []Table
}

// Table returns the named table, or nil.
func (rs *Ruleset) Table(name string) *Table {
	for i := range rs.Tables {
		if rs.Tables[i].Name == name {
			return &rs.Tables[i]
		}
	}
	return nil
}

// AutomaticPrefix starts the name of every table pfctl creates for a pool
// (pfctl_parser.h: PF_OPT_TABLE_PREFIX "__automatic_").
const AutomaticPrefix = "__automatic_"

// sortEntries puts table entries in the order "pfctl -T show" prints them:
// the kernel walks its radix tree, which for host entries of one family is
// ascending address order; interface names break ties.
func sortEntries(es []PoolHost) {
	slices.SortFunc(es, func(a, b PoolHost) int {
		if c := a.Addr.Prefix.Addr().Compare(b.Addr.Prefix.Addr()); c != 0 {
			return c
		}
		if c := a.Addr.Prefix.Bits() - b.Addr.Prefix.Bits(); c != 0 {
			return c
		}
		return strings.Compare(a.If, b.If)
	})
}
