package linkstate

import (
	"fmt"
	"net/netip"
	"time"
)

// State is one view of a link, or the cluster's verdict on it.
type State uint8

const (
	// Unknown means no data yet, or the node that reported it is not alive.
	Unknown State = iota
	// Up means the link carries traffic.
	Up
	// Down means the link must not carry traffic.
	Down
)

var stateNames = [...]string{Unknown: "unknown", Up: "up", Down: "down"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText writes the state as "up", "down" or "unknown" (JSON, etcd, gossip).
func (s State) MarshalText() ([]byte, error) {
	if int(s) >= len(stateNames) {
		return nil, fmt.Errorf("linkstate: invalid state %d", uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText reads "up", "down" or "unknown".
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("linkstate: unknown state %q (want up, down or unknown)", b)
}

// TargetObs is what one node's prober knows of one probe target of a link.
type TargetObs struct {
	Addr  netip.Addr    `json:"addr"`
	State State         `json:"state"`
	Loss  float64       `json:"loss"` // percent 0..100 over the probe window
	RTT   time.Duration `json:"rtt"`  // mean RTT over the window's answered probes
	// Misses is the run of unanswered probes up to now (0 after an answer).
	Misses int `json:"misses,omitempty"`
	// Probes is how many results the loss window holds.
	Probes int `json:"probes,omitempty"`
	// Reason says which rule last set State: fall, loss, rtt, rise, failed.
	Reason string `json:"reason,omitempty"`
}

// Observation is one node's view of one link, as emitted by probe/ and
// gossiped by cluster/. It is emitted on change and as a periodic heartbeat.
type Observation struct {
	Link    string        `json:"link"`
	State   State         `json:"state"`
	Targets []TargetObs   `json:"targets,omitempty"`
	Loss    float64       `json:"loss"` // percent 0..100, worst of the targets that decided the state
	RTT     time.Duration `json:"rtt"`
	Since   time.Time     `json:"since"`   // when State last changed
	LastOK  time.Time     `json:"last_ok"` // last answered probe on this link
	Seq     uint64        `json:"seq"`     // per node, increases with every emitted Observation
}

// NodeView is everything the deciding node knows of one cluster node.
type NodeView struct {
	Alive bool                   `json:"alive"` // gossip says the node is alive
	Links map[string]Observation `json:"links"` // by link name
}

// Observations holds every known node's view, by node name.
type Observations map[string]NodeView

// Action is what an operator override does to a link.
type Action string

const (
	// Drain takes a link out of use whatever the probes say.
	Drain Action = "drain"
	// ForceUp keeps a link in use whatever the probes say.
	ForceUp Action = "force-up"
)

// Override is an operator's decision on one link; it wins over probes until
// Until (zero Until: no expiry).
type Override struct {
	Link   string    `json:"link"`
	Action Action    `json:"action"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until,omitzero"`
}

// DecideMode says how nodes' views combine into a verdict.
type DecideMode string

const (
	// Any: a link is up while at least one alive node sees it up.
	Any DecideMode = "any"
	// Majority: a link is up while more than half of the alive nodes that
	// have a view of it see it up.
	Majority DecideMode = "majority"
	// All: a link is down as soon as any alive node sees it down.
	All DecideMode = "all"
)

// AllDownMode says which links carry traffic when no link is up.
type AllDownMode string

const (
	// AllDownAll fails open: use every link.
	AllDownAll AllDownMode = "all"
	// AllDownNone is the ifstated recipe's behaviour: empty anchors.
	AllDownNone AllDownMode = "none"
	// AllDownKeep keeps the links of the last verdict that had an up link.
	AllDownKeep AllDownMode = "keep"
)

// LinkPolicy is the part of a link's configuration that Decide needs.
type LinkPolicy struct {
	Name string `json:"name"`
	Tier int    `json:"tier"` // >= 1; the lowest tier with an up link carries the balanced traffic
	// Settle bounds how long a link may stay unknown while an alive node
	// probes it and no probe is answered: past Settle it counts as down. config derives it from the probe settings (fall × interval +
	// timeout: the time a dead link's probes take to say so). 0: no bound.
	Settle time.Duration `json:"settle,omitempty"`
}

// Damping is flap damping in the style of BGP route-flap damping: every
// down→up transition adds Penalty; the penalty halves every HalfLife; a link
// whose penalty exceeds Suppress is held down until the penalty decays below
// Reuse. Penalty == 0 disables damping.
type Damping struct {
	Penalty  float64       `json:"penalty"`
	HalfLife time.Duration `json:"half_life"`
	Suppress float64       `json:"suppress"`
	Reuse    float64       `json:"reuse"`
}

// Policy is the configuration that Decide needs; config.Config.Policy builds it.
type Policy struct {
	Links   []LinkPolicy `json:"links"` // in configuration order
	Decide  DecideMode   `json:"decide"`
	AllDown AllDownMode  `json:"all_down"`
	Damping Damping      `json:"damping"`
}

// LinkVerdict is the cluster's decision on one link.
type LinkVerdict struct {
	State      State     `json:"state"`    // the verdict: Up or Down (Unknown only before any data)
	Observed   State     `json:"observed"` // what the nodes' views combine to, before damping and overrides
	Since      time.Time `json:"since"`    // when State last changed
	Reason     string    `json:"reason"`
	Penalty    float64   `json:"penalty,omitempty"` // damping penalty as of PenaltyAt
	PenaltyAt  time.Time `json:"penalty_at,omitzero"`
	Suppressed bool      `json:"suppressed,omitempty"` // held down by flap damping
	Override   Action    `json:"override,omitempty"`   // the override in force, if any
	// Probing is when an alive node was first seen probing this link while
	// its verdict was still Unknown and no probe had been answered; the
	// Settle bound counts from here. Zero once an answer came (the probes
	// then settle it) or the link has settled.
	Probing time.Time `json:"probing,omitzero"`
}

// Impairment names a node that sees a link down while the verdict says up;
// with carp.demote > 0 that node demotes its CARP group.
type Impairment struct {
	Node string `json:"node"`
	Link string `json:"link"`
}

// Verdict is the cluster's decision on every link. Seq increases by one with
// every change; deciding on unchanged input returns the previous verdict.
type Verdict struct {
	Seq      uint64                 `json:"seq"`
	Time     time.Time              `json:"time"`
	Links    map[string]LinkVerdict `json:"links"`
	Active   []string               `json:"active"`             // links carrying balanced traffic, in policy order
	AllDown  bool                   `json:"all_down,omitempty"` // no link is up; Active follows all_down
	Impaired []Impairment           `json:"impaired,omitempty"` // sorted by node, then link
	// ActiveReason says why Active holds what it holds: the tier in use, a
	// higher tier taking over, or how all_down was applied.
	ActiveReason string `json:"active_reason,omitempty"`
}

// Evidence is one node's view of a link at the time of a transition.
type Evidence struct {
	Node    string        `json:"node"`
	Alive   bool          `json:"alive"`
	State   State         `json:"state"`
	Loss    float64       `json:"loss"`
	RTT     time.Duration `json:"rtt"`
	LastOK  time.Time     `json:"last_ok,omitzero"`
	Targets []TargetObs   `json:"targets,omitempty"`
}

// Transition is one change of one link's verdict, with the evidence that decided it.
type Transition struct {
	Link     string     `json:"link"`
	From     State      `json:"from"`
	To       State      `json:"to"`
	Reason   string     `json:"reason"`
	Time     time.Time  `json:"time"`
	Evidence []Evidence `json:"evidence"` // one per known node, sorted by node
}
