package pfapply

import "net/netip"

// Anchor is one pf anchor and the complete rule text it must hold. Empty
// Rules means the anchor must be empty.
type Anchor struct {
	Name  string `json:"name"`
	Rules string `json:"rules"`
}

// Ruleset is everything pf and the routing table must hold for one verdict.
type Ruleset struct {
	Anchors      []Anchor   `json:"anchors"`       // canonical order: nat-*, pass-*, applications, loadbalance
	DefaultRoute netip.Addr `json:"default_route"` // zero when no link is in use
	Hash         string     `json:"hash"`          // hex sha256 over anchors and default route
}
