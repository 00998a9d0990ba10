package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/linkstate"
)

// ErrCorruptRecord is wrapped by reads of an etcd record that does not
// decode (not JSON, wrong types, a counter that is not a number).
var ErrCorruptRecord = errors.New("corrupt record in etcd")

// problems remembers what this node found wrong in what it reads (etcd
// records, gossip from peers) so that each problem is logged once, not on
// every read, and is listed in nodes/<node> for gwctl status until it is
// gone.
type problems struct {
	log *slog.Logger
	mu  sync.Mutex
	by  map[string]problem // by subject: an etcd key or "gossip peer <name>"
}

type problem struct {
	msg   string
	count int
}

func newProblems(log *slog.Logger) *problems {
	return &problems{log: log, by: map[string]problem{}}
}

// report logs msg about subject at error level the first time (and when
// the message changes); later identical reports are only counted.
func (p *problems) report(subject, msg string, attrs ...any) {
	p.mu.Lock()
	old, seen := p.by[subject]
	p.by[subject] = problem{msg: msg, count: old.count + 1}
	p.mu.Unlock()
	if seen && old.msg == msg {
		return
	}
	p.log.Error(msg, append([]any{"subject", subject}, attrs...)...)
}

// clear forgets subject's problem (logged once at info when it was known).
func (p *problems) clear(subject string) {
	p.mu.Lock()
	_, seen := p.by[subject]
	delete(p.by, subject)
	p.mu.Unlock()
	if seen {
		p.log.Info("problem gone", "subject", subject)
	}
}

// clearMissing forgets the problems of keys under prefix that are not in
// present (deleted since).
func (p *problems) clearMissing(prefix string, present map[string]bool) {
	p.mu.Lock()
	var gone []string
	for s := range p.by {
		if strings.HasPrefix(s, prefix) && !present[s] {
			gone = append(gone, s)
		}
	}
	p.mu.Unlock()
	for _, s := range gone {
		p.clear(s)
	}
}

// list is every current problem, "subject: message (n times)", sorted.
func (p *problems) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, s := range slices.Sorted(maps.Keys(p.by)) {
		pr := p.by[s]
		line := s + ": " + pr.msg
		if pr.count > 1 {
			line += fmt.Sprintf(" (seen %d times)", pr.count)
		}
		out = append(out, line)
	}
	return out
}

// maxShownValue bounds how much of a bad value goes into a log line.
const maxShownValue = 64

// showValue quotes the start of a bad value for a log line.
func showValue(b []byte) string {
	if len(b) > maxShownValue {
		return fmt.Sprintf("%q... (%d bytes)", b[:maxShownValue], len(b))
	}
	return strconv.Quote(string(b))
}

// leaderVerdict reads the verdict for a new leader's prev. A verdict that
// does not decode is not a reason to stop deciding: the leader starts from
// no previous verdict (every link Unknown, so the first decision records
// a transition for each link) with a seq above anything written before
// (the key's mod revision plus the audit counter: both only grow, and
// every verdict write bumped the revision), so nodes take it as newer.
func (n *Node) leaderVerdict(ctx context.Context) (VerdictRecord, error) {
	k := n.store.Keys
	r, err := n.cli.Txn(ctx).Then(clientv3.OpGet(k.Verdict()), clientv3.OpGet(k.AuditCounter())).Commit()
	if err != nil {
		return VerdictRecord{}, fmt.Errorf("read verdict: %w", err)
	}
	kvs := r.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return VerdictRecord{}, nil
	}
	var rec VerdictRecord
	derr := json.Unmarshal(kvs[0].Value, &rec)
	if derr == nil {
		n.probs.clear(k.Verdict())
		return rec, nil
	}
	var counter uint64
	if c := r.Responses[1].GetResponseRange().Kvs; len(c) > 0 {
		counter, _ = strconv.ParseUint(string(c[0].Value), 10, 64)
	}
	seq := uint64(kvs[0].ModRevision) + counter
	n.probs.report(k.Verdict(), "verdict in etcd does not decode; deciding as if there were no previous verdict",
		"key", k.Verdict(), "value", showValue(kvs[0].Value), "err", derr, "next_seq", seq+1)
	return VerdictRecord{Verdict: linkstate.Verdict{Seq: seq}}, nil
}

// leaderOverrides reads the overrides for a new leader, skipping (and
// reporting) every one that is not valid.
func (n *Node) leaderOverrides(ctx context.Context) ([]linkstate.Override, error) {
	r, err := n.cli.Get(ctx, n.store.Keys.OverridePrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read overrides: %w", err)
	}
	return n.decodeOverrides(r.Kvs), nil
}

// validOverride decodes override/<link>: valid JSON, its link field the
// key's link, a link of the local config, a known action.
func (n *Node) validOverride(kv *mvccpb.KeyValue) (linkstate.Override, error) {
	var o linkstate.Override
	key := string(kv.Key)
	link := strings.TrimPrefix(key, n.store.Keys.OverridePrefix())
	if err := json.Unmarshal(kv.Value, &o); err != nil {
		return o, fmt.Errorf("override does not decode (value %s): %w", showValue(kv.Value), err)
	}
	if o.Link != link {
		return o, fmt.Errorf("override names link %q under the key of link %q", o.Link, link)
	}
	if !slices.ContainsFunc(n.pol.Links, func(l linkstate.LinkPolicy) bool { return l.Name == link }) {
		return o, fmt.Errorf("override for link %q, which is not in this node's configuration", link)
	}
	switch o.Action {
	case linkstate.Drain, linkstate.ForceUp:
	default:
		return o, fmt.Errorf("override action %q is not one gwctl writes", o.Action)
	}
	return o, nil
}

// newestAuditSeq is the sequence of the newest audit record (0 if none),
// from its key: what the audit counter should hold.
func (s *Store) newestAuditSeq(ctx context.Context) (uint64, error) {
	r, err := s.Cli.Get(ctx, s.Keys.AuditPrefix(), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1), clientv3.WithKeysOnly())
	if err != nil {
		return 0, fmt.Errorf("read newest audit key: %w", err)
	}
	if len(r.Kvs) == 0 {
		return 0, nil
	}
	key := string(r.Kvs[0].Key)
	seq, err := strconv.ParseUint(strings.TrimPrefix(key, s.Keys.AuditPrefix()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("audit key %s does not end in a sequence number: %w", key, ErrCorruptRecord)
	}
	return seq, nil
}

// admit reports whether a gossiped state may enter the view: from a node
// of the configuration (when the configuration names its nodes). A state
// from a node with another config hash is admitted (a rolling config
// change passes through that) but reported.
func (g *Gossip) admit(s NodeState) bool {
	if g.probs == nil {
		return true
	}
	subject := "gossip peer " + strconv.Quote(s.Node)
	if len(g.known) > 0 && !g.known[s.Node] {
		g.probs.report(subject, "gossip from a node that is not in the configuration (nodes:); its state is ignored", "peer", s.Node)
		return false
	}
	if s.ConfigHash != "" && g.hash != "" && s.ConfigHash != g.hash {
		g.probs.report(subject, fmt.Sprintf("peer runs another configuration (config hash %s, ours %s)", ShortHash(s.ConfigHash), ShortHash(g.hash)), "peer", s.Node)
		return true
	}
	g.probs.clear(subject)
	return true
}

// undecodable reports a gossip message that does not decode. memberlist
// does not say which peer sent it.
func (g *Gossip) undecodable(what string, b []byte, err error) {
	if g.probs == nil {
		g.log.Warn("gossip: undecodable "+what, "err", err)
		return
	}
	g.probs.report("gossip "+what, "gossip "+what+" does not decode (memberlist does not name the sender); ignored",
		"value", showValue(b), "err", err)
}
