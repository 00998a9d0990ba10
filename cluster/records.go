package cluster

import (
	"fmt"
	"time"

	"gwstated/linkstate"
)

// Keys names every etcd key of one cluster, under /gwstated/<cluster>/.
// This layout is a contract (docs/DESIGN.md "etcd layout"): gwctl reads it.
type Keys struct {
	Prefix string // "/gwstated/<cluster>/"
}

// NewKeys returns the key layout of the named cluster.
func NewKeys(cluster string) Keys { return Keys{Prefix: "/gwstated/" + cluster + "/"} }

// Election is the prefix of the leader election (concurrency.Election).
func (k Keys) Election() string { return k.Prefix + "election/" }

// Verdict is the key of the current VerdictRecord.
func (k Keys) Verdict() string { return k.Prefix + "verdict" }

// AuditPrefix is the prefix of every AuditRecord.
func (k Keys) AuditPrefix() string { return k.Prefix + "audit/" }

// Audit is the key of one AuditRecord; the sequence is zero-padded so keys sort.
func (k Keys) Audit(seq uint64) string { return fmt.Sprintf("%s%020d", k.AuditPrefix(), seq) }

// AppliedPrefix is the prefix of every AppliedRecord.
func (k Keys) AppliedPrefix() string { return k.Prefix + "applied/" }

// Applied is the key of one node's AppliedRecord.
func (k Keys) Applied(node string) string { return k.AppliedPrefix() + node }

// OverridePrefix is the prefix of every operator override.
func (k Keys) OverridePrefix() string { return k.Prefix + "override/" }

// Override is the key of one link's override (a linkstate.Override in JSON).
func (k Keys) Override(link string) string { return k.OverridePrefix() + link }

// NodesPrefix is the prefix of every NodeRecord.
func (k Keys) NodesPrefix() string { return k.Prefix + "nodes/" }

// Node is the key of one node's NodeRecord (on that node's session lease).
func (k Keys) Node(node string) string { return k.NodesPrefix() + node }

// VerdictRecord is the value at Keys.Verdict: the verdict every node applies.
type VerdictRecord struct {
	linkstate.Verdict
	Leader     string `json:"leader"`      // node that committed it
	AuditSeq   uint64 `json:"audit_seq"`   // sequence of the newest audit record
	ConfigHash string `json:"config_hash"` // config hash of the leader that decided

	// Delivered is when this node's Verdicts channel was handed the
	// record (the Node's clock); not stored.
	Delivered time.Time `json:"-"`
}

// Audit record kinds.

// AuditKind says what an audit record records.
type AuditKind string

const (
	KindTransition AuditKind = "transition" // a link's verdict changed
	KindOverride   AuditKind = "override"   // an operator set or cleared an override
)

// AuditRecord is one append-only entry of the audit log at Keys.Audit(Seq).
type AuditRecord struct {
	Seq         uint64               `json:"seq"`
	Kind        AuditKind            `json:"kind"`
	Time        time.Time            `json:"time"`
	VerdictSeq  uint64               `json:"verdict_seq,omitempty"`
	Leader      string               `json:"leader,omitempty"`
	Link        string               `json:"link"`
	From        linkstate.State      `json:"from"`
	To          linkstate.State      `json:"to"`
	Reason      string               `json:"reason"`
	Evidence    []linkstate.Evidence `json:"evidence,omitempty"`
	By          string               `json:"by,omitempty"`           // operator (overrides)
	Override    *linkstate.Override  `json:"override,omitempty"`     // overrides: what was set (nil: cleared)
	WithoutEtcd bool                 `json:"without_etcd,omitempty"` // decided on gossip while etcd was unreachable
}

// AppliedRecord is the value at Keys.Applied(node): what that node has in pf.
type AppliedRecord struct {
	Node    string    `json:"node"`
	Seq     uint64    `json:"seq"`  // verdict seq applied
	Hash    string    `json:"hash"` // pfapply.Ruleset.Hash
	Time    time.Time `json:"time"`
	Error   string    `json:"error,omitempty"` // last apply error; empty when the apply succeeded
	Backend string    `json:"backend"`
	// StateError is why the node cannot save its local state file (the
	// state directory full or read-only); the rules are applied all the
	// same. Empty when the last write succeeded.
	StateError string `json:"state_error,omitempty"`
}

// Member is one gossip member as a node sees it.
type Member struct {
	Name  string      `json:"name"`
	Addr  string      `json:"addr"`
	State MemberState `json:"state"` // alive | suspect | dead | left
}

// CARPStatus is one carp interface's state on a node.
type CARPStatus struct {
	Interface string `json:"interface"`
	State     string `json:"state"` // MASTER | BACKUP | INIT
	Demote    int    `json:"demote"`
}

// Mode is where a node's verdicts come from.
type Mode string

// Modes a node can be in.
const (
	ModeEtcd   Mode = "etcd"   // normal: verdicts come from etcd
	ModeHold   Mode = "hold"   // etcd unreachable: rules held as applied
	ModeGossip Mode = "gossip" // etcd unreachable: deciding on the gossip view
)

// NodeRecord is the value at Keys.Node(node), kept on the node's session
// lease so it disappears with the node: what gwctl status shows, since gwctl
// does not join the gossip.
type NodeRecord struct {
	Node         string                           `json:"node"`
	Time         time.Time                        `json:"time"`
	Version      string                           `json:"version"`
	Witness      bool                             `json:"witness,omitempty"`
	Observations map[string]linkstate.Observation `json:"observations"`
	Members      []Member                         `json:"members"`
	CARP         []CARPStatus                     `json:"carp,omitempty"`
	ConfigHash   string                           `json:"config_hash"`
	AppliedSeq   uint64                           `json:"applied_seq"`
	AppliedHash  string                           `json:"applied_hash"`
	Mode         Mode                             `json:"mode"`
	Leader       bool                             `json:"leader"`
	LeaderSince  time.Time                        `json:"leader_since,omitzero"`
	Problems     []string                         `json:"problems,omitempty"` // bad records or gossip this node ignored
}

// AuditCounter is the key holding the newest audit sequence number (decimal).
// Every writer of audit records (the leader, gwctl drain) bumps it in the
// same txn, guarded by its mod revision, so sequences never collide.
func (k Keys) AuditCounter() string { return k.Prefix + "audit-seq" }

// ShortHash is the first 12 hex digits of a ruleset or config hash, as
// people compare them (logs, gwctl).
func ShortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
