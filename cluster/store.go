package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/linkstate"
)

// ErrNotLeader is returned by a fenced write whose leader key is gone or
// belongs to a newer leader: the writer was deposed and must stop deciding.
var ErrNotLeader = errors.New("not the leader: election key changed, write fenced off")

// maxCASRetries bounds the retries of an audit-counter compare-and-swap that
// lost a race to another writer.
const maxCASRetries = 20

// Store reads and writes one cluster's records in etcd (docs/DESIGN.md "etcd
// layout"). The agent and gwctl share it.
type Store struct {
	Cli       *clientv3.Client
	Keys      Keys
	Retention int // audit records kept (cluster.etcd.audit_retention); <= 0: this writer never trims (gwctl without the config, readers)
	// OnCorrupt, when set, hears of a corrupt record the store worked
	// around (the agent reports it once); nil: silent.
	// msg "" says the record is good again.
	OnCorrupt  func(key, msg string)
	counterBad atomic.Bool // OnCorrupt was told the audit counter is bad
}

// NewStore returns the store of the named cluster.
func NewStore(cli *clientv3.Client, cluster string, retention int) *Store {
	return &Store{Cli: cli, Keys: NewKeys(cluster), Retention: retention}
}

// Fence identifies a leadership term: the election key and its create
// revision (concurrency.Election Key and Rev).
type Fence struct {
	Key string
	Rev int64
}

// retention is the number of audit records to keep; 0: do not trim.
func (s *Store) retention() uint64 {
	return uint64(max(s.Retention, 0))
}

// Verdict reads the current verdict; ok is false when none was ever written.
// rev is the store revision of the read.
func (s *Store) Verdict(ctx context.Context) (rec VerdictRecord, rev int64, ok bool, err error) {
	r, err := s.Cli.Get(ctx, s.Keys.Verdict())
	if err != nil {
		return rec, 0, false, fmt.Errorf("read verdict: %w", err)
	}
	rev = r.Header.Revision
	if len(r.Kvs) == 0 {
		return rec, rev, false, nil
	}
	if err := json.Unmarshal(r.Kvs[0].Value, &rec); err != nil {
		return rec, rev, false, fmt.Errorf("decode verdict at %s: %w", s.Keys.Verdict(), err)
	}
	return rec, rev, true, nil
}

// counter reads the audit counter and its mod revision (0 when absent).
func (s *Store) counter(ctx context.Context) (seq uint64, modRev int64, err error) {
	r, err := s.Cli.Get(ctx, s.Keys.AuditCounter())
	if err != nil {
		return 0, 0, fmt.Errorf("read audit counter: %w", err)
	}
	if len(r.Kvs) == 0 {
		return 0, 0, nil
	}
	seq, err = strconv.ParseUint(string(r.Kvs[0].Value), 10, 64)
	if err != nil {
		// Not a number: renumber after the newest audit record. The
		// caller's txn compares the counter's mod revision and overwrites
		// it, so the repair is as safe as a normal append.
		newest, nerr := s.newestAuditSeq(ctx)
		if nerr != nil {
			return 0, 0, fmt.Errorf("audit counter %s: %s is not a number (%w), and %w", s.Keys.AuditCounter(), showValue(r.Kvs[0].Value), ErrCorruptRecord, nerr)
		}
		if s.OnCorrupt != nil {
			s.counterBad.Store(true)
			s.OnCorrupt(s.Keys.AuditCounter(), fmt.Sprintf("audit counter is not a number (%s); renumbering after the newest audit record %d", showValue(r.Kvs[0].Value), newest))
		}
		return newest, r.Kvs[0].ModRevision, nil
	}
	if s.OnCorrupt != nil && s.counterBad.CompareAndSwap(true, false) {
		s.OnCorrupt(s.Keys.AuditCounter(), "")
	}
	return seq, r.Kvs[0].ModRevision, nil
}

// appendOps numbers audits from seq+1, returns the puts, the counter bump,
// the retention delete and the new newest seq.
func (s *Store) appendOps(seq uint64, audits []AuditRecord) ([]clientv3.Op, uint64, error) {
	var ops []clientv3.Op
	for i := range audits {
		seq++
		audits[i].Seq = seq
		b, err := json.Marshal(audits[i])
		if err != nil {
			return nil, 0, fmt.Errorf("encode audit record: %w", err)
		}
		ops = append(ops, clientv3.OpPut(s.Keys.Audit(seq), string(b)))
	}
	if len(audits) > 0 {
		ops = append(ops, clientv3.OpPut(s.Keys.AuditCounter(), strconv.FormatUint(seq, 10)))
		if keep := s.retention(); keep > 0 && seq > keep {
			ops = append(ops, clientv3.OpDelete(s.Keys.Audit(0), clientv3.WithRange(s.Keys.Audit(seq-keep+1))))
		}
	}
	return ops, seq, nil
}

// counterCmp guards the audit counter against a concurrent writer.
func (s *Store) counterCmp(modRev int64) clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(s.Keys.AuditCounter()), "=", modRev)
}

// CommitVerdict writes rec and audits (numbered here; rec.AuditSeq is set
// to the newest) in one txn fenced by f: if the election key's create
// revision is no longer f.Rev the txn does nothing and ErrNotLeader is
// returned. Audit records beyond the retention are deleted in the same txn.
// It returns the revision of the commit.
func (s *Store) CommitVerdict(ctx context.Context, f Fence, rec VerdictRecord, audits []AuditRecord) (int64, error) {
	for range maxCASRetries {
		seq, modRev, err := s.counter(ctx)
		if err != nil {
			return 0, err
		}
		ops, newest, err := s.appendOps(seq, audits)
		if err != nil {
			return 0, err
		}
		rec.AuditSeq = newest
		vb, err := json.Marshal(rec)
		if err != nil {
			return 0, fmt.Errorf("encode verdict: %w", err)
		}
		ops = append(ops, clientv3.OpPut(s.Keys.Verdict(), string(vb)))
		inner := clientv3.OpTxn([]clientv3.Cmp{s.counterCmp(modRev)}, ops, nil)
		r, err := s.Cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Rev)).
			Then(inner).
			Commit()
		if err != nil {
			return 0, fmt.Errorf("commit verdict %d: %w", rec.Seq, err)
		}
		if !r.Succeeded {
			return 0, fmt.Errorf("commit verdict %d as %s (rev %d): %w", rec.Seq, f.Key, f.Rev, ErrNotLeader)
		}
		if r.Responses[0].GetResponseTxn().Succeeded {
			return r.Header.Revision, nil
		}
		// Another writer (gwctl drain) appended audit records: renumber.
	}
	return 0, fmt.Errorf("commit verdict %d: audit counter kept changing after %d tries", rec.Seq, maxCASRetries)
}

// appendAudit appends audits with extra ops in one txn (no fence).
func (s *Store) appendAudit(ctx context.Context, audits []AuditRecord, extra ...clientv3.Op) error {
	for range maxCASRetries {
		seq, modRev, err := s.counter(ctx)
		if err != nil {
			return err
		}
		ops, _, err := s.appendOps(seq, audits)
		if err != nil {
			return err
		}
		r, err := s.Cli.Txn(ctx).If(s.counterCmp(modRev)).Then(append(ops, extra...)...).Commit()
		if err != nil {
			return fmt.Errorf("append audit: %w", err)
		}
		if r.Succeeded {
			return nil
		}
	}
	return fmt.Errorf("append audit: audit counter kept changing after %d tries", maxCASRetries)
}

// PutOverride sets an operator override (gwctl drain) and appends an audit
// record of kind override, in one txn. The leader sees it through its watch.
func (s *Store) PutOverride(ctx context.Context, ov linkstate.Override) error {
	if ov.Link == "" {
		return errors.New("override: link is empty")
	}
	if ov.Since.IsZero() {
		ov.Since = time.Now()
	}
	b, err := json.Marshal(ov)
	if err != nil {
		return fmt.Errorf("encode override: %w", err)
	}
	a := AuditRecord{Kind: KindOverride, Time: ov.Since, Link: ov.Link, Reason: ov.Reason, By: ov.By, Override: &ov}
	return s.appendAudit(ctx, []AuditRecord{a}, clientv3.OpPut(s.Keys.Override(ov.Link), string(b)))
}

// DeleteOverride clears link's override (gwctl undrain) and appends an
// audit record of kind override with no Override.
func (s *Store) DeleteOverride(ctx context.Context, link, by, reason string) error {
	a := AuditRecord{Kind: KindOverride, Time: time.Now(), Link: link, Reason: reason, By: by}
	return s.appendAudit(ctx, []AuditRecord{a}, clientv3.OpDelete(s.Keys.Override(link)))
}

// Overrides reads every override, and the revision of the read.
func (s *Store) Overrides(ctx context.Context) ([]linkstate.Override, int64, error) {
	r, err := s.Cli.Get(ctx, s.Keys.OverridePrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("read overrides: %w", err)
	}
	out := make([]linkstate.Override, 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		var o linkstate.Override
		if err := json.Unmarshal(kv.Value, &o); err != nil {
			return nil, 0, fmt.Errorf("decode override at %s: %w", kv.Key, err)
		}
		out = append(out, o)
	}
	return out, r.Header.Revision, nil
}

// Audit reads the newest limit audit records (all when limit <= 0), oldest first.
func (s *Store) Audit(ctx context.Context, limit int) ([]AuditRecord, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	r, err := s.Cli.Get(ctx, s.Keys.AuditPrefix(), opts...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	out := make([]AuditRecord, len(r.Kvs))
	for i, kv := range r.Kvs {
		if err := json.Unmarshal(kv.Value, &out[len(r.Kvs)-1-i]); err != nil {
			return nil, fmt.Errorf("decode audit record at %s: %w", kv.Key, err)
		}
	}
	return out, nil
}

// PutApplied writes a node's AppliedRecord.
func (s *Store) PutApplied(ctx context.Context, a AppliedRecord) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode applied record: %w", err)
	}
	if _, err := s.Cli.Put(ctx, s.Keys.Applied(a.Node), string(b)); err != nil {
		return fmt.Errorf("write applied/%s: %w", a.Node, err)
	}
	return nil
}

// Applied reads every node's AppliedRecord, by node.
func (s *Store) Applied(ctx context.Context) (map[string]AppliedRecord, error) {
	r, err := s.Cli.Get(ctx, s.Keys.AppliedPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read applied records: %w", err)
	}
	out := map[string]AppliedRecord{}
	for _, kv := range r.Kvs {
		var a AppliedRecord
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			return nil, fmt.Errorf("decode applied record at %s: %w", kv.Key, err)
		}
		out[a.Node] = a
	}
	return out, nil
}

// PutNode writes a node's NodeRecord on lease (its session lease).
func (s *Store) PutNode(ctx context.Context, rec NodeRecord, lease clientv3.LeaseID) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode node record: %w", err)
	}
	if _, err := s.Cli.Put(ctx, s.Keys.Node(rec.Node), string(b), clientv3.WithLease(lease)); err != nil {
		return fmt.Errorf("write nodes/%s: %w", rec.Node, err)
	}
	return nil
}

// Nodes reads every live node's NodeRecord, by node.
func (s *Store) Nodes(ctx context.Context) (map[string]NodeRecord, error) {
	r, err := s.Cli.Get(ctx, s.Keys.NodesPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read node records: %w", err)
	}
	out := map[string]NodeRecord{}
	for _, kv := range r.Kvs {
		var n NodeRecord
		if err := json.Unmarshal(kv.Value, &n); err != nil {
			return nil, fmt.Errorf("decode node record at %s: %w", kv.Key, err)
		}
		out[n.Node] = n
	}
	return out, nil
}
