package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/linkstate"
)

// watchLoop follows the verdict key and the overrides. It reads both, then
// watches from the next revision; when the watch ends (reconnect, leader
// loss) it resumes from the last revision it saw, so no verdict in between
// is missed; when that revision was compacted it reads again.
func (n *Node) watchLoop(ctx context.Context) {
	var rev int64 // last revision seen; 0: read first
	for ctx.Err() == nil {
		if rev == 0 {
			r, err := n.readAll(ctx)
			if err != nil {
				if ctx.Err() == nil {
					n.log.Warn("read verdict and overrides", "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(retryDelay):
				}
				continue
			}
			rev = r
		}
		rev = n.watchFrom(ctx, rev)
	}
}

// readAll reads the verdict and the overrides at one revision.
func (n *Node) readAll(ctx context.Context) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, n.requestTimeout())
	defer cancel()
	k := n.store.Keys
	r, err := n.cli.Txn(rctx).Then(
		clientv3.OpGet(k.Verdict()),
		clientv3.OpGet(k.OverridePrefix(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return 0, err
	}
	if kvs := r.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		var rec VerdictRecord
		if err := json.Unmarshal(kvs[0].Value, &rec); err != nil {
			n.badVerdict(kvs[0].Value, err)
		} else {
			n.probs.clear(k.Verdict())
			n.deliver(rec, false, true)
		}
	}
	n.setOverrides(n.decodeOverrides(r.Responses[1].GetResponseRange().Kvs))
	return r.Header.Revision, nil
}

func (n *Node) setOverrides(ovs []linkstate.Override) {
	slices.SortFunc(ovs, func(a, b linkstate.Override) int { return strings.Compare(a.Link, b.Link) })
	n.mu.Lock()
	n.overrides = ovs
	n.mu.Unlock()
	n.signalDecide()
}

// watchFrom watches the verdict key and the overrides from rev+1 and
// returns the last revision seen (0 when it must read again). One watch
// covers both: the range [override/, verdict] holds nothing else in the
// layout ("override/" < "verdict" and no key sorts between them).
func (n *Node) watchFrom(ctx context.Context, rev int64) int64 {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	k := n.store.Keys
	w := n.cli.Watch(wctx, k.OverridePrefix(), clientv3.WithRange(k.Verdict()+"\x00"), clientv3.WithRev(rev+1))
	for wr := range w {
		if err := wr.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) || wr.CompactRevision != 0 {
				n.log.Warn("verdict watch compacted; reading again", "rev", rev, "compact_rev", wr.CompactRevision)
				return 0
			}
			if ctx.Err() == nil {
				n.log.Warn("verdict watch ended; resuming", "rev", rev, "err", err)
			}
			return rev
		}
		overridesChanged := false
		for _, ev := range wr.Events {
			rev = max(rev, ev.Kv.ModRevision)
			key := string(ev.Kv.Key)
			if key != k.Verdict() {
				overridesChanged = overridesChanged || strings.HasPrefix(key, k.OverridePrefix())
				continue
			}
			if ev.Type != mvccpb.PUT {
				continue
			}
			var rec VerdictRecord
			if err := json.Unmarshal(ev.Kv.Value, &rec); err != nil {
				n.badVerdict(ev.Kv.Value, err)
				continue
			}
			n.probs.clear(key)
			n.deliver(rec, false, false)
		}
		if overridesChanged {
			// Overrides are few: re-read them all at this revision rather
			// than patching the list event by event.
			if err := n.readOverrides(ctx, rev); err != nil {
				return 0
			}
		}
	}
	return rev
}

func (n *Node) readOverrides(ctx context.Context, rev int64) error {
	rctx, cancel := context.WithTimeout(ctx, n.requestTimeout())
	defer cancel()
	r, err := n.cli.Get(rctx, n.store.Keys.OverridePrefix(), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return err
	}
	n.setOverrides(n.decodeOverrides(r.Kvs))
	return nil
}

// decodeOverrides reads override/<link> values; an invalid one
// (validOverride) is reported once and skipped.
func (n *Node) decodeOverrides(kvs []*mvccpb.KeyValue) []linkstate.Override {
	var ovs []linkstate.Override
	seen := map[string]bool{}
	for _, kv := range kvs {
		key := string(kv.Key)
		seen[key] = true
		o, err := n.validOverride(kv)
		if err != nil {
			n.probs.report(key, "override in etcd ignored: "+err.Error(), "key", key)
			continue
		}
		n.probs.clear(key)
		ovs = append(ovs, o)
	}
	n.probs.clearMissing(n.store.Keys.OverridePrefix(), seen)
	return ovs
}

// badVerdict reports a verdict that does not decode: the node keeps the
// verdict it has (and the rules applied for it).
func (n *Node) badVerdict(value []byte, err error) {
	k := n.store.Keys.Verdict()
	n.probs.report(k, "verdict in etcd does not decode; keeping the last good verdict and rules",
		"key", k, "value", showValue(value), "err", err)
}
