package nftapply

import (
	"net/netip"
	"strconv"
)

// Plan is everything the kernel must hold for one verdict on one node:
// the nft table, the per-link routing tables and ip rules, and the main
// table's default route. Render builds it; Apply puts it in place.
type Plan struct {
	// TableName is the nft table, in family inet (nft.table).
	TableName string `json:"table_name"`
	// Table is the complete table exactly as `nft list table inet NAME`
	// prints it, so what Apply loads, what the kernel lists and the golden
	// files are the same text.
	Table string `json:"nft"`
	// Family is 4 or 6: the address family of lan.network, of every route
	// and rule.
	Family int `json:"family"`
	// Routes are the per-link routing tables of the links in use (ready).
	Routes []Route `json:"routes"`
	// Rules are gwstated's ip rules, by priority.
	Rules []Rule `json:"rules"`
	// DefaultRoute is the main table's default route: the first active
	// link's gateway. Zero when no link is active (the route is left alone).
	DefaultRoute Route `json:"default_route"`
	// Links are every configured link's mark, table and state in this plan,
	// in config order.
	Links []LinkPlan `json:"links"`
	// Hash is the hex sha256 of the table, routes, cluster-wide rules and
	// default route. The source rules (from the node's own probe_source
	// addresses) are left out: every node with the same verdict and config
	// reports the same hash.
	Hash string `json:"hash"`

	// rules is Table as data (Render sets it): what the netlink rule swap
	// encodes. A Plan made otherwise has none and is loaded with nft -f.
	rules *ruleset
}

// LinkPlan is one link's part of a Plan.
type LinkPlan struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	Mark      uint32 `json:"mark"`
	Table     uint32 `json:"table"`
	Ready     bool   `json:"ready"`  // routed and NATed: Up, or active (all_down: all/keep)
	Active    bool   `json:"active"` // gets new connections
}

// Route is a default route in a routing table.
type Route struct {
	Table   uint32     `json:"table"` // 0: the main table
	Gateway netip.Addr `json:"gateway"`
	Dev     string     `json:"dev"`
	Link    string     `json:"link"`
}

// IsZero reports whether r is no route.
func (r Route) IsZero() bool { return !r.Gateway.IsValid() }

// String is the route as ip-route(8) takes it.
func (r Route) String() string {
	if r.IsZero() {
		return ""
	}
	s := "default via " + r.Gateway.String() + " dev " + r.Dev
	if r.Table != 0 {
		s += " table " + strconv.FormatUint(uint64(r.Table), 10)
	}
	return s
}

// Rule is one ip rule gwstated owns.
type Rule struct {
	Priority int `json:"priority"`
	// Fwmark selects packets with this mark (0: none).
	Fwmark uint32 `json:"fwmark,omitempty"`
	// From selects packets from this source (zero: any).
	From netip.Addr `json:"from,omitzero"`
	// Table is looked up; 0 means the main table.
	Table uint32 `json:"table"`
	// SuppressMain: the rule looks up main but ignores its default route
	// (suppress_prefixlength 0), so main's specific routes win over the
	// link tables.
	SuppressMain bool `json:"suppress_main,omitempty"`
	// Node marks a rule that depends on the node (a probe source), left out
	// of the Hash.
	Node bool   `json:"node,omitempty"`
	Link string `json:"link,omitempty"`
}

// String is the rule as ip-rule(8) takes it.
func (r Rule) String() string {
	s := "priority " + strconv.Itoa(r.Priority)
	if r.From.IsValid() {
		s += " from " + r.From.String()
	}
	if r.Fwmark != 0 {
		s += " fwmark " + hexMark(r.Fwmark)
	}
	if r.Table == 0 {
		s += " lookup main"
	} else {
		s += " lookup " + strconv.FormatUint(uint64(r.Table), 10)
	}
	if r.SuppressMain {
		s += " suppress_prefixlength 0"
	}
	return s
}

func hexMark(m uint32) string { return "0x" + strconv.FormatUint(uint64(m), 16) }
