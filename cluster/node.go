package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/config"
	"gwstated/linkstate"
)

// On-etcd-loss modes (cluster.on_etcd_loss): the node Mode each one puts a
// node in when etcd is unreachable.
const (
	OnEtcdLossHold   = string(ModeHold)
	OnEtcdLossGossip = string(ModeGossip)
)

// Version is what NodeRecord.Version reports; the agent may override it with WithVersion.
const Version = "dev"

// retryDelay paces reconnects to etcd and retries of a failed commit.
const retryDelay = 200 * time.Millisecond

// minDecideDelay bounds how soon a NextEvent timer may fire again, so a
// verdict that NextEvent keeps calling due cannot spin the decide loop.
const minDecideDelay = 10 * time.Millisecond

// Option changes how New builds a Node.
type Option func(*Node)

// WithClient makes the Node use cli instead of dialing cluster.etcd; the
// caller keeps ownership (Run does not close it).
func WithClient(cli *clientv3.Client) Option { return func(n *Node) { n.cli = cli } }

// WithClock sets the clock Decide is given (default time.Now).
func WithClock(now func() time.Time) Option { return func(n *Node) { n.now = now } }

// WithWitness runs the node as a witness (gwstated --witness): gossip and
// etcd only; it publishes no observations and never becomes leader.
func WithWitness() Option { return func(n *Node) { n.witness = true } }

// WithVersion sets the version NodeRecord reports.
func WithVersion(v string) Option { return func(n *Node) { n.version = v } }

// Status is a snapshot of what the Node knows, for metrics and logs.
type Status struct {
	Node        string        `json:"node"`
	Mode        Mode          `json:"mode"`   // ModeEtcd, ModeHold or ModeGossip
	Leader      string        `json:"leader"` // current leader's name; "" unknown
	IsLeader    bool          `json:"is_leader"`
	LeaderSince time.Time     `json:"leader_since,omitzero"`
	Members     []Member      `json:"members"`
	Verdict     VerdictRecord `json:"verdict"` // the last verdict delivered
	EtcdError   string        `json:"etcd_error,omitempty"`
	Pending     int           `json:"pending_audit,omitempty"` // audit records decided on gossip, not yet in etcd
	Problems    []string      `json:"problems,omitempty"`      // bad records or gossip this node ignored (hostile.go)
}

// Node is one gwstated cluster member: it gossips this node's state, takes
// part in the etcd election, decides as leader (or on gossip while etcd is
// unreachable, with on_etcd_loss: gossip) and delivers every new verdict to
// apply on Verdicts.
type Node struct {
	cfg     *config.Config
	log     *slog.Logger
	name    string
	witness bool
	version string
	pol     linkstate.Policy
	hash    string
	now     func() time.Time
	cli     *clientv3.Client // nil until Run dials, unless WithClient
	ownCli  bool
	gcfg    gossipConfig
	g       *Gossip
	store   *Store

	verdicts chan VerdictRecord // cap 1, newest wins
	// deliverMu serialises deliver: choosing the newest verdict and putting
	// it in verdicts happen in one order, so a deliver that chose an older
	// verdict cannot push it over a newer one that overtook it.
	deliverMu sync.Mutex
	kick      chan struct{} // cap 1: decide again
	nodeKick  chan struct{} // cap 1: rewrite nodes/<node>
	ready     chan struct{} // closed when gossip listens

	mu          sync.Mutex
	mode        Mode
	leader      string
	isLeader    bool
	leaderSince time.Time
	etcdErr     string
	overrides   []linkstate.Override
	delivered   VerdictRecord
	fromGossip  bool          // delivered was decided on gossip, not read from etcd
	pending     []AuditRecord // decided on gossip while etcd was unreachable
	applied     *AppliedRecord
	appliedOut  bool // applied not yet written to etcd
	// appliedMu orders the writes of applied/<node>: ReportApplied and
	// nodeRecordLoop both write it, and without it the loop's write of an
	// older record could land after ReportApplied's newer one — the
	// record then stayed one seq behind the verdict until the next
	// decision (seen in the lab under load: "fw1 applied Seq:36, verdict
	// seq 37"). Taken before mu, never while holding it.
	appliedMu sync.Mutex
	// testLoopPut, tests only: called by nodeRecordLoop, under appliedMu,
	// just before it writes an applied record.
	testLoopPut func(AppliedRecord)
	running     bool
	probs       *problems // bad records and gossip, each logged once (hostile.go)

	onDeliver func(VerdictRecord) // tests: sees every delivered verdict, before the channel coalesces them
}

// New checks cfg and prepares a Node for cfg.Node; nothing listens until Run.
// It fails with ErrNoGossipKey when no gossip key is configured and
// cluster.gossip.insecure is not set.
func New(cfg *config.Config, log *slog.Logger, opts ...Option) (*Node, error) {
	if cfg.Node == "" {
		return nil, errors.New("node: no node name (set node: or --node)")
	}
	if cfg.Cluster.Name == "" {
		return nil, errors.New("cluster.name: empty")
	}
	n := &Node{
		cfg:      cfg,
		log:      log.With("node", cfg.Node),
		name:     cfg.Node,
		witness:  cfg.IsWitness(),
		version:  Version,
		pol:      cfg.Policy(),
		hash:     cfg.Hash(),
		now:      time.Now,
		verdicts: make(chan VerdictRecord, 1),
		kick:     make(chan struct{}, 1),
		nodeKick: make(chan struct{}, 1),
		ready:    make(chan struct{}),
		mode:     ModeEtcd,
	}
	for _, o := range opts {
		o(n)
	}
	switch cfg.Cluster.OnEtcdLoss {
	case "", OnEtcdLossHold, OnEtcdLossGossip:
	default:
		return nil, fmt.Errorf("cluster.on_etcd_loss: %q is not hold or gossip", cfg.Cluster.OnEtcdLoss)
	}
	gc := cfg.Gossip()
	n.gcfg = gossipConfig{
		Name: n.name, Bind: gc.Bind, Advertise: gc.Advertise, Join: gc.Join,
		ProbeInterval: gc.ProbeInterval, ProbeTimeout: gc.ProbeTimeout, SuspicionMult: gc.SuspicionMult,
		GossipInterval: gc.GossipInterval, PushPullInterval: gc.PushPullInterval,
	}
	switch {
	case gc.KeyFile != "":
		k, err := ReadKeyFile(gc.KeyFile)
		if err != nil {
			return nil, err
		}
		n.gcfg.Key = k
	case gc.Insecure:
		n.log.Error("GOSSIP IS NOT ENCRYPTED: cluster.gossip.insecure is set; anyone on the network can read and forge link state. Run `gwctl keygen` and set cluster.gossip.key_file.")
	default:
		return nil, ErrNoGossipKey
	}
	n.g = newGossip(n.name, n.witness, n.hash, n.log)
	n.probs = newProblems(n.log)
	n.g.probs, n.g.hash = n.probs, n.hash
	if len(cfg.Nodes) > 0 {
		n.g.known = map[string]bool{}
		for name := range cfg.Nodes {
			n.g.known[name] = true
		}
	}
	return n, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.name }

// Ready is closed once Run has gossip listening; GossipAddr is valid then.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// GossipAddr is the host:port peers join this node at (after Ready).
func (n *Node) GossipAddr() string { return n.g.Addr() }

// Verdicts delivers every new verdict to apply: one decided by the leader
// and read from etcd, or (on_etcd_loss: gossip, etcd unreachable) decided
// here on the gossip view. The channel holds only the newest: a slow reader
// skips intermediate verdicts, never the latest. It is closed when Run returns.
func (n *Node) Verdicts() <-chan VerdictRecord { return n.verdicts }

// Publish gossips this node's new observation of a link at once.
func (n *Node) Publish(obs linkstate.Observation) {
	n.g.Update(func(s *NodeState) {
		if s.Observations == nil {
			s.Observations = map[string]linkstate.Observation{}
		}
		s.Observations[obs.Link] = obs
	})
}

// SetCARP gossips this node's CARP interface states.
func (n *Node) SetCARP(carp []CARPStatus) {
	carp = slices.Clone(carp)
	n.g.Update(func(s *NodeState) { s.CARP = carp })
}

// ReportApplied records what this node has in pf: it is gossiped and
// written to applied/<node>. When etcd is unreachable the record is kept
// and written once etcd is back, and the error wraps ErrEtcdUnreachable.
func (n *Node) ReportApplied(ctx context.Context, a AppliedRecord) error {
	n.appliedMu.Lock()
	defer n.appliedMu.Unlock()
	a.Node = n.name
	if a.Time.IsZero() {
		a.Time = n.now()
	}
	n.g.Update(func(s *NodeState) { s.AppliedSeq, s.AppliedHash = a.Seq, a.Hash })
	n.mu.Lock()
	n.applied = &a
	n.appliedOut = true
	st := n.store
	online := n.mode == ModeEtcd && st != nil
	n.mu.Unlock()
	n.signalNode()
	if !online {
		return fmt.Errorf("applied/%s kept until etcd is back: %w", n.name, ErrEtcdUnreachable)
	}
	if err := st.PutApplied(ctx, a); err != nil {
		return err
	}
	n.mu.Lock()
	if n.applied != nil && *n.applied == a {
		n.appliedOut = false
	}
	n.mu.Unlock()
	return nil
}

// Status returns a snapshot of the node's view of the cluster.
func (n *Node) Status() Status {
	members := n.g.Members()
	n.mu.Lock()
	defer n.mu.Unlock()
	return Status{
		Node: n.name, Mode: n.mode, Leader: n.leader, IsLeader: n.isLeader, LeaderSince: n.leaderSince,
		Members: members, Verdict: n.delivered, EtcdError: n.etcdErr, Pending: len(n.pending),
		Problems: n.probs.list(),
	}
}

// Run starts gossip and the etcd client and runs until ctx ends. On return
// every goroutine it started has finished, leadership is resigned, the
// session lease is revoked (nodes/<node> disappears) and gossip is left.
// Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.running {
		n.mu.Unlock()
		return errors.New("cluster: Node.Run called twice")
	}
	n.running = true
	n.mu.Unlock()
	defer close(n.verdicts)

	if err := n.g.start(n.gcfg); err != nil {
		return err
	}
	if n.cli == nil {
		ec := n.cfg.Cluster.Etcd
		ec.Endpoints = n.cfg.EtcdEndpoints()
		cli, err := dial(ctx, ec, n.log)
		if err != nil {
			n.g.Leave(time.Second)
			return err
		}
		n.cli, n.ownCli = cli, true
	}
	n.mu.Lock()
	n.store = NewStore(n.cli, n.cfg.Cluster.Name, n.cfg.Cluster.Etcd.AuditRetention)
	n.store.OnCorrupt = func(key, msg string) {
		if msg == "" {
			n.probs.clear(key)
			return
		}
		n.probs.report(key, msg, "key", key)
	}
	n.mu.Unlock()
	close(n.ready)

	var wg sync.WaitGroup
	wg.Go(func() { n.g.SendLoop(ctx) })
	wg.Go(func() { n.gossipLoop(ctx) })
	wg.Go(func() { n.etcdLoop(ctx) })
	wg.Wait()

	err := n.g.Leave(time.Second)
	if n.ownCli {
		err = errors.Join(err, n.cli.Close())
	}
	if err != nil {
		n.log.Warn("cluster shutdown", "err", err)
	}
	return nil
}

// gossipLoop turns gossip changes and membership events into decisions
// and node-record updates.
func (n *Node) gossipLoop(ctx context.Context) {
	t := time.NewTicker(n.g.probeIv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.g.Changed():
			n.g.PushIfJoined()
		case now := <-t.C:
			ev := n.g.Tick(now)
			if len(ev) == 0 {
				continue
			}
			for _, e := range ev {
				n.log.Info("gossip member", "member", e.Member.Name, "state", e.Member.State)
			}
		}
		n.signalDecide()
		n.signalNode()
	}
}

func (n *Node) signalDecide() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *Node) signalNode() {
	select {
	case n.nodeKick <- struct{}{}:
	default:
	}
}

// deliver hands rec to Verdicts if it differs from the last one delivered.
// A stale etcd verdict (older than one decided on gossip) is not delivered
// on its initial read: the leader backfills the gossip verdict shortly.
//
// Two goroutines can deliver (the etcd watch, and gossipDecide in
// on_etcd_loss: gossip). deliverMu keeps one from choosing verdict 36,
// being descheduled, and pushing 36 over a 37 the other chose and pushed
// after it.
func (n *Node) deliver(rec VerdictRecord, gossip, initialRead bool) {
	n.deliverMu.Lock()
	defer n.deliverMu.Unlock()
	n.mu.Lock()
	if !gossip && !initialRead && rec.Leader != n.name && len(n.pending) > 0 {
		// Another leader commits again: it wrote its own records of the
		// decisions made without etcd; ours are the same decisions.
		n.log.Info("dropping decisions made without etcd; the leader wrote its own", "records", len(n.pending), "leader", rec.Leader)
		n.pending = nil
	}
	d := n.delivered
	if initialRead && n.fromGossip && rec.Seq < d.Seq {
		n.mu.Unlock()
		return
	}
	if sameDecision(d.Verdict, rec.Verdict) {
		n.mu.Unlock()
		return
	}
	rec.Delivered = n.now()
	n.delivered = rec
	n.fromGossip = gossip
	n.mu.Unlock()
	n.log.Info("verdict", "seq", rec.Seq, "state", rec.Active, "leader", rec.Leader, "without_etcd", gossip)
	if n.onDeliver != nil {
		n.onDeliver(rec)
	}
	for {
		select {
		case n.verdicts <- rec:
			return
		default:
		}
		select {
		case <-n.verdicts: // drop the older undelivered verdict
		default:
		}
	}
}

func (n *Node) setMode(mode Mode, etcdErr error) {
	n.mu.Lock()
	old := n.mode
	n.mode = mode
	n.etcdErr = ""
	if etcdErr != nil {
		n.etcdErr = etcdErr.Error()
	}
	n.mu.Unlock()
	if old == mode {
		return
	}
	if mode == ModeEtcd {
		n.log.Info("etcd reachable", "mode", mode)
	} else {
		n.log.Error("etcd unreachable: rules are not flushed", "mode", mode, "err", etcdErr)
	}
	n.g.Update(func(s *NodeState) { s.Mode = mode })
	n.signalNode()
}

// decideLoop runs Decide on the gossip view whenever it may change (a
// kick, or NextEvent's time) and hands every changed verdict to commit.
// commit returns false to stop (deposed); an error keeps prev and retries.
func (n *Node) decideLoop(ctx context.Context, prev linkstate.Verdict, commit func(v linkstate.Verdict, trs []linkstate.Transition) (bool, error)) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		n.mu.Lock()
		ovs := slices.Clone(n.overrides)
		n.mu.Unlock()
		now := n.now()
		v, trs := linkstate.Decide(prev, n.g.View(), ovs, n.pol, now)
		wait := time.Duration(-1)
		if v.Seq != prev.Seq {
			more, err := commit(v, trs)
			switch {
			case !more:
				return
			case err != nil:
				n.log.Warn("verdict not committed; retrying", "seq", v.Seq, "err", err)
				wait = retryDelay
			default:
				prev = v
			}
		}
		if wait < 0 {
			if next, ok := linkstate.NextEvent(prev, ovs, n.pol, now); ok {
				wait = max(next.Sub(now), minDecideDelay)
			}
		}
		var tc <-chan time.Time
		if wait >= 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		case <-tc:
		}
	}
}

// auditFor turns transitions into audit records.
func (n *Node) auditFor(v linkstate.Verdict, trs []linkstate.Transition, withoutEtcd bool) []AuditRecord {
	out := make([]AuditRecord, len(trs))
	for i, t := range trs {
		out[i] = AuditRecord{
			Kind: KindTransition, Time: t.Time, VerdictSeq: v.Seq, Leader: n.name, Link: t.Link,
			From: t.From, To: t.To, Reason: t.Reason, Evidence: t.Evidence, WithoutEtcd: withoutEtcd,
		}
	}
	return out
}

// gossipDecide is the on_etcd_loss: gossip mode: decide here on the gossip
// view, deliver locally, and keep the audit records for the leader to write
// when etcd is back.
func (n *Node) gossipDecide(ctx context.Context) {
	n.mu.Lock()
	prev := n.delivered.Verdict
	n.mu.Unlock()
	keep := int(n.store.retention())
	n.decideLoop(ctx, prev, func(v linkstate.Verdict, trs []linkstate.Transition) (bool, error) {
		rec := VerdictRecord{Verdict: v, Leader: n.name, ConfigHash: n.hash}
		n.mu.Lock()
		n.pending = append(n.pending, n.auditFor(v, trs, true)...)
		if over := len(n.pending) - keep; keep > 0 && over > 0 {
			n.pending = slices.Delete(n.pending, 0, over)
		}
		n.mu.Unlock()
		n.deliver(rec, true, false)
		return true, nil
	})
}

// sameDecision reports whether two verdicts apply the same: same seq, same
// active links, same state per link, same impairments. Verdicts decided on
// gossip by different nodes differ only in their timestamps.
func sameDecision(a, b linkstate.Verdict) bool {
	if a.Seq != b.Seq || a.AllDown != b.AllDown || !slices.Equal(a.Active, b.Active) ||
		!slices.Equal(a.Impaired, b.Impaired) || len(a.Links) != len(b.Links) {
		return false
	}
	for k, la := range a.Links {
		lb, ok := b.Links[k]
		if !ok || la.State != lb.State || la.Override != lb.Override || la.Suppressed != lb.Suppressed {
			return false
		}
	}
	return true
}
