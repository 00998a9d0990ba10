package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"gwstated/linkstate"
)

// nodeRecordInterval is the least time between two writes of nodes/<node>.
const nodeRecordInterval = 100 * time.Millisecond

func (n *Node) sessionTTL() int {
	ttl := n.cfg.Cluster.Etcd.SessionTTL // config.Default: 3s
	return max(int(ttl.Round(time.Second)/time.Second), 1)
}

func (n *Node) requestTimeout() time.Duration {
	if t := n.cfg.Cluster.Etcd.RequestTimeout; t > 0 {
		return t
	}
	return dialTimeout(n.cfg.Cluster.Etcd)
}

// newSession grants a lease within the dial timeout and keeps it alive.
func (n *Node) newSession(ctx context.Context) (*concurrency.Session, error) {
	gctx, cancel := context.WithTimeout(ctx, dialTimeout(n.cfg.Cluster.Etcd))
	l, err := n.cli.Grant(gctx, int64(n.sessionTTL()))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w: no lease from %v within %s: %w", ErrEtcdUnreachable, n.cli.Endpoints(), dialTimeout(n.cfg.Cluster.Etcd), err)
	}
	s, err := concurrency.NewSession(n.cli, concurrency.WithLease(l.ID), concurrency.WithTTL(n.sessionTTL()), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("%w: session: %w", ErrEtcdUnreachable, err)
	}
	return s, nil
}

// offline runs the gossip decide loop while etcd is unreachable.
type offline struct {
	cancel context.CancelFunc // nil: not offline
	wg     sync.WaitGroup
}

func (o *offline) stop() {
	if o.cancel != nil {
		o.cancel()
		o.wg.Wait()
		o.cancel = nil
	}
}

// etcdLoop keeps a session to etcd. With one it runs online; without one
// the node is in hold or gossip mode until a session can be made again.
func (n *Node) etcdLoop(ctx context.Context) {
	var off offline
	defer off.stop()
	for ctx.Err() == nil {
		sess, err := n.newSession(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if off.cancel == nil {
				mode := ModeHold
				if n.cfg.Cluster.OnEtcdLoss == OnEtcdLossGossip && !n.witness {
					mode = ModeGossip
				}
				n.setMode(mode, err)
				octx, cancel := context.WithCancel(ctx)
				off.cancel = cancel
				if mode == ModeGossip {
					off.wg.Go(func() { n.gossipDecide(octx) })
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryDelay):
			}
			continue
		}
		off.stop()
		n.setMode(ModeEtcd, nil)
		n.online(ctx, sess)
		if ctx.Err() != nil {
			// Orderly shutdown: revoke the lease so nodes/<node> and our
			// election key go now, not after the TTL.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_, _ = n.cli.Revoke(rctx, sess.Lease())
			cancel()
			sess.Orphan()
			return
		}
		n.log.Warn("etcd session lost; reconnecting")
		sess.Orphan()
	}
}

// online runs while the session lives: watch, node record, campaign.
func (n *Node) online(ctx context.Context, sess *concurrency.Session) {
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-sess.Done():
			cancel()
		case <-octx.Done():
		}
	})
	wg.Go(func() { n.watchLoop(octx) })
	wg.Go(func() { n.nodeRecordLoop(octx, sess.Lease()) })
	wg.Go(func() { n.observeLeader(octx) })
	if !n.witness {
		wg.Go(func() { n.campaign(octx, ctx, sess) })
	}
	wg.Wait()
	n.mu.Lock()
	n.isLeader, n.leader = false, ""
	n.mu.Unlock()
}

// observeLeader keeps Status().Leader current: the value of the oldest
// key under the election prefix, re-read whenever the prefix changes.
func (n *Node) observeLeader(ctx context.Context) {
	prefix := n.store.Keys.Election()
	for ctx.Err() == nil {
		r, err := n.cli.Get(ctx, prefix, clientv3.WithFirstCreate()...)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(retryDelay):
			}
			continue
		}
		leader := ""
		if len(r.Kvs) > 0 {
			leader = string(r.Kvs[0].Value)
		}
		n.mu.Lock()
		changed := n.leader != leader
		n.leader = leader
		n.mu.Unlock()
		if changed {
			n.signalNode()
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		w := n.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(r.Header.Revision+1))
		<-w // any change (or the watch ending): read again
		cancel()
	}
}

// campaign waits to be elected, then decides until the session ends, ctx
// ends (then it resigns) or a write is fenced off.
func (n *Node) campaign(ctx, parent context.Context, sess *concurrency.Session) {
	f, err := campaign(ctx, sess, n.store.Keys.Election(), n.name)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("campaign failed", "err", err)
		}
		return
	}
	n.mu.Lock()
	n.isLeader, n.leader, n.leaderSince = true, n.name, n.now()
	n.mu.Unlock()
	n.log.Info("elected leader", "key", f.Key, "rev", f.Rev)
	n.signalNode()
	n.lead(ctx, f)
	n.mu.Lock()
	n.isLeader, n.leaderSince = false, time.Time{}
	n.mu.Unlock()
	if parent.Err() != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(parent), time.Second)
		if err := resign(rctx, n.cli, f); err != nil {
			n.log.Warn("resign failed; the lease revoke or TTL ends the term", "err", err)
		} else {
			n.log.Info("resigned leadership")
		}
		cancel()
	}
}

// campaign is concurrency.Election.Campaign without its cleanup: on a
// cancelled campaign Election.Campaign resigns with the client's own
// context, which blocks for as long as etcd has no quorum — exactly when
// we must give up and hold. Our key is on the session lease, so a
// cancelled campaign leaves nothing behind once the lease is revoked (on
// shutdown) or expires (session lost). The protocol is the same: a key
// <prefix><lease id> and leadership once no older key exists; keys made
// by concurrency.Election (gwctl, etcdctl elect) interoperate.
func campaign(ctx context.Context, s *concurrency.Session, prefix, val string) (Fence, error) {
	cli := s.Client()
	k := fmt.Sprintf("%s%x", prefix, s.Lease())
	r, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, val, clientv3.WithLease(s.Lease()))).
		Else(clientv3.OpGet(k)).
		Commit()
	if err != nil {
		return Fence{}, fmt.Errorf("campaign: %w", err)
	}
	rev := r.Header.Revision
	if !r.Succeeded {
		rev = r.Responses[0].GetResponseRange().Kvs[0].CreateRevision
	}
	for {
		opts := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(rev-1))
		g, err := cli.Get(ctx, prefix, opts...)
		if err != nil {
			return Fence{}, fmt.Errorf("campaign: %w", err)
		}
		if len(g.Kvs) == 0 {
			return Fence{Key: k, Rev: rev}, nil
		}
		if err := waitDelete(ctx, cli, string(g.Kvs[0].Key), g.Header.Revision); err != nil {
			return Fence{}, err
		}
	}
}

// waitDelete waits until key is deleted after rev (or the watch ends).
func waitDelete(ctx context.Context, cli *clientv3.Client, key string, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range cli.Watch(wctx, key, clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("campaign: watch %s: %w", key, err)
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil // the watch ended (reconnect): look again
}

// resign deletes our election key if it is still ours.
func resign(ctx context.Context, cli *clientv3.Client, f Fence) error {
	_, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Rev)).
		Then(clientv3.OpDelete(f.Key)).
		Commit()
	return err
}

// lead is the leader's decide loop. It first writes what was decided on
// gossip while etcd was unreachable (audit records marked without_etcd,
// and the gossip verdict if it is newer), then decides on every change.
func (n *Node) lead(ctx context.Context, f Fence) {
	var prev VerdictRecord
	for {
		rctx, cancel := context.WithTimeout(ctx, n.requestTimeout())
		rec, err := n.leaderVerdict(rctx)
		if err == nil {
			var ovs []linkstate.Override
			ovs, err = n.leaderOverrides(rctx)
			if err == nil {
				n.mu.Lock()
				n.overrides = ovs
				n.mu.Unlock()
			}
		}
		cancel()
		if err == nil {
			prev = rec
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retryDelay):
		}
	}
	n.mu.Lock()
	pending := n.pending
	local, fromGossip := n.delivered, n.fromGossip
	n.mu.Unlock()
	if len(pending) > 0 || fromGossip && local.Seq > prev.Seq {
		commit := prev
		if local.Seq > prev.Seq {
			commit = local
			commit.Leader = n.name
		}
		rctx, cancel := context.WithTimeout(ctx, n.requestTimeout())
		_, err := n.store.CommitVerdict(rctx, f, commit, pending)
		cancel()
		switch {
		case errors.Is(err, ErrNotLeader):
			n.log.Warn("deposed before the backfill", "err", err)
			return
		case err != nil:
			n.log.Warn("backfill of decisions made without etcd failed; they stay in the log of this node only", "records", len(pending), "err", err)
		default:
			n.log.Info("wrote decisions made without etcd", "records", len(pending), "seq", commit.Seq)
			prev = commit
			n.mu.Lock()
			n.pending = n.pending[len(pending):]
			n.mu.Unlock()
		}
	}
	failed := false // the last commit returned an error: it may still have landed
	n.decideLoop(ctx, prev.Verdict, func(v linkstate.Verdict, trs []linkstate.Transition) (bool, error) {
		rec := VerdictRecord{Verdict: v, Leader: n.name, ConfigHash: n.hash}
		rctx, cancel := context.WithTimeout(ctx, n.requestTimeout())
		defer cancel()
		if failed {
			// A txn that timed out may commit later (etcd does not withdraw
			// an accepted proposal): do not write its audit records twice.
			if cur, _, ok, err := n.store.Verdict(rctx); err == nil && ok && cur.Leader == n.name && sameDecision(cur.Verdict, v) {
				failed = false
				return true, nil
			}
		}
		_, err := n.store.CommitVerdict(rctx, f, rec, n.auditFor(v, trs, false))
		failed = err != nil
		if errors.Is(err, ErrNotLeader) {
			n.log.Error("deposed: verdict write fenced off", "seq", v.Seq, "err", err)
			return false, nil
		}
		if err != nil {
			return ctx.Err() == nil, err
		}
		return true, nil
	})
}

// nodeRecordLoop keeps nodes/<node> current on the session lease and
// writes an applied record that was reported while etcd was unreachable.
func (n *Node) nodeRecordLoop(ctx context.Context, lease clientv3.LeaseID) {
	n.signalNode()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.nodeKick:
		}
		rec := n.nodeRecord()
		rctx, cancel := context.WithTimeout(ctx, n.requestTimeout())
		err := n.store.PutNode(rctx, rec, lease)
		if err == nil {
			err = n.writeAppliedOut(rctx)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			n.log.Warn("node record not written", "err", err)
			n.signalNode()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(nodeRecordInterval):
		}
	}
}

// writeAppliedOut writes the applied record ReportApplied could not write
// (etcd was unreachable), under appliedMu so that it never lands after a
// newer one.
func (n *Node) writeAppliedOut(ctx context.Context) error {
	n.appliedMu.Lock()
	defer n.appliedMu.Unlock()
	n.mu.Lock()
	a, out := n.applied, n.appliedOut
	n.mu.Unlock()
	if !out || a == nil {
		return nil
	}
	if n.testLoopPut != nil {
		n.testLoopPut(*a)
	}
	if err := n.store.PutApplied(ctx, *a); err != nil {
		return err
	}
	n.mu.Lock()
	if n.applied == a {
		n.appliedOut = false
	}
	n.mu.Unlock()
	return nil
}

func (n *Node) nodeRecord() NodeRecord {
	self := n.g.Self()
	members := n.g.Members()
	n.mu.Lock()
	defer n.mu.Unlock()
	return NodeRecord{
		Node: n.name, Time: n.now(), Version: n.version, Witness: n.witness,
		Observations: self.Observations, Members: members, CARP: self.CARP, ConfigHash: n.hash,
		AppliedSeq: self.AppliedSeq, AppliedHash: self.AppliedHash, Mode: n.mode,
		Leader: n.isLeader, LeaderSince: n.leaderSince, Problems: n.probs.list(),
	}
}
