package pfapply

import "net/netip"

// Anchor is one pf anchor and the complete rule text it must hold. Empty
// Rules means the anchor must be empty.
type Anchor struct {
	Name  string     `json:"name"`
	Kind  AnchorKind `json:"kind"`
	Link  string     `json:"link,omitempty"` // the link a nat/pass anchor belongs to
	Rules string     `json:"rules"`
}

// AnchorKind says what an anchor does, which decides the order of loads:
// a returning link's nat and pass anchors load before the balancing anchors
// include it; a failing link leaves the balancing anchors before its nat and
// pass anchors are emptied.
type AnchorKind string

// Anchor kinds.
const (
	KindNAT     AnchorKind = "nat"     // nat-<link>: match out ... nat-to
	KindPass    AnchorKind = "pass"    // pass-<link>: traffic sourced from the link leaving by another
	KindBalance AnchorKind = "balance" // loadbalance and applications
)

// Ruleset is everything pf and the routing table must hold for one verdict.
type Ruleset struct {
	Anchors      []Anchor   `json:"anchors"`       // canonical order: nat-*, pass-*, applications, loadbalance
	DefaultRoute netip.Addr `json:"default_route"` // zero when no link is in use
	Hash         string     `json:"hash"`          // hex sha256 over anchors and default route
}
