package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/linkstate"
)

// Snapshot is every record of a cluster's etcd layout as of one revision,
// read in one transaction: what gwctl status shows and gwctl drain waits
// on. Records that are not valid JSON are listed in Undecodable, not
// returned as errors, so that one bad record does not hide the rest.
type Snapshot struct {
	Verdict     *VerdictRecord                // nil: no verdict yet
	Applied     map[string]AppliedRecord      // by the node name in the key
	Overrides   map[string]linkstate.Override // by the link name in the key
	Nodes       map[string]NodeRecord         // by the node name in the key
	Election    string                        // the agent leader: value of the oldest election key; "" none
	Undecodable []string                      // "key: error"
	Revision    int64                         // etcd revision of the reading
}

// Snapshot reads the verdict, applied/, override/, nodes/ and the
// election in one transaction. A failed read is returned wrapped as
// "read cluster records: ...".
func (s *Store) Snapshot(ctx context.Context) (Snapshot, error) {
	snap := Snapshot{
		Applied:   map[string]AppliedRecord{},
		Overrides: map[string]linkstate.Override{},
		Nodes:     map[string]NodeRecord{},
	}
	k := s.Keys
	resp, err := s.Cli.Txn(ctx).Then(
		clientv3.OpGet(k.Verdict()),
		clientv3.OpGet(k.AppliedPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(k.OverridePrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(k.NodesPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(k.Election(), append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...),
	).Commit()
	if err != nil {
		return snap, fmt.Errorf("read cluster records: %w", err)
	}
	snap.Revision = resp.Header.Revision
	undecodable := func(key []byte, err error) {
		snap.Undecodable = append(snap.Undecodable, fmt.Sprintf("%s: %v", key, err))
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		var v VerdictRecord
		if err := json.Unmarshal(kvs[0].Value, &v); err != nil {
			undecodable(kvs[0].Key, err)
		} else {
			snap.Verdict = &v
		}
	}
	decodeAll(resp.Responses[1].GetResponseRange().Kvs, k.AppliedPrefix(), snap.Applied, undecodable)
	decodeAll(resp.Responses[2].GetResponseRange().Kvs, k.OverridePrefix(), snap.Overrides, undecodable)
	decodeAll(resp.Responses[3].GetResponseRange().Kvs, k.NodesPrefix(), snap.Nodes, undecodable)
	if kvs := resp.Responses[4].GetResponseRange().Kvs; len(kvs) > 0 {
		snap.Election = string(kvs[0].Value)
	}
	return snap, nil
}

// decodeAll decodes every value into out, by its key without prefix.
func decodeAll[T any](kvs []*mvccpb.KeyValue, prefix string, out map[string]T, undecodable func([]byte, error)) {
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			undecodable(kv.Key, err)
			continue
		}
		out[strings.TrimPrefix(string(kv.Key), prefix)] = v
	}
}

// VerdictOverride reads, in one request, the verdict (nil when there is
// none) and whether link has an override, with the revision of the read:
// what gwctl drain and undrain check before they write.
func (s *Store) VerdictOverride(ctx context.Context, link string) (v *VerdictRecord, hasOverride bool, rev int64, err error) {
	k := s.Keys
	resp, err := s.Cli.Txn(ctx).Then(clientv3.OpGet(k.Verdict()), clientv3.OpGet(k.Override(link))).Commit()
	if err != nil {
		return nil, false, 0, fmt.Errorf("read verdict: %w", err)
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		v = &VerdictRecord{}
		if err := json.Unmarshal(kvs[0].Value, v); err != nil {
			return nil, false, 0, fmt.Errorf("verdict record %s is not valid JSON: %w", kvs[0].Key, err)
		}
	}
	return v, len(resp.Responses[1].GetResponseRange().Kvs) > 0, resp.Header.Revision, nil
}

// AuditQuery selects audit records for ReadAudit.
type AuditQuery struct {
	Link  string    // only this link's records; "" every link
	Since time.Time // stop at the first record older than this (zero: no bound)
	Limit int       // at most this many records; 0: no limit
	Page  int64     // records per request (required, > 0)
	// RequestTimeout bounds each request (0: only ctx does).
	RequestTimeout time.Duration
	// Corrupt, when set, receives the key of every record that does not
	// decode (the error wraps ErrCorruptRecord) and reading goes on; such
	// a record counts against no filter or limit. Nil: ReadAudit stops
	// with that error.
	Corrupt func(key string, err error)
}

// ReadAudit calls emit for every audit record that q selects, newest
// first, reading q.Page records per request: each request is a descending
// range read that ends just before the last key of the previous page,
// pinned to the first page's revision so that the pages form one snapshot
// (read on from the newest revision if that one is compacted away). It
// returns the number of requests made. A failed request is wrapped as
// "read audit log: ...".
func (s *Store) ReadAudit(ctx context.Context, q AuditQuery, emit func(AuditRecord)) (int, error) {
	if q.Page <= 0 {
		return 0, errors.New("read audit log: page size must be positive")
	}
	prefix := s.Keys.AuditPrefix()
	end := clientv3.GetPrefixRangeEnd(prefix)
	var rev int64
	requests, shown := 0, 0
	for {
		opts := []clientv3.OpOption{
			clientv3.WithRange(end), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend),
			clientv3.WithLimit(q.Page),
		}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if q.RequestTimeout > 0 {
			rctx, cancel = context.WithTimeout(ctx, q.RequestTimeout)
		}
		resp, err := s.Cli.Get(rctx, prefix, opts...)
		cancel()
		requests++
		if errors.Is(err, rpctypes.ErrCompacted) && rev != 0 {
			rev = 0
			continue
		}
		if err != nil {
			return requests, fmt.Errorf("read audit log: %w", err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			var r AuditRecord
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				err = fmt.Errorf("%w: audit record %q does not decode: %w", ErrCorruptRecord, kv.Key, err)
				if q.Corrupt == nil {
					return requests, err
				}
				q.Corrupt(string(kv.Key), err)
				continue
			}
			if !q.Since.IsZero() && r.Time.Before(q.Since) {
				if r.WithoutEtcd {
					continue // written late, when etcd was back: newer records may follow
				}
				return requests, nil
			}
			if q.Link != "" && r.Link != q.Link {
				continue
			}
			emit(r)
			shown++
			if q.Limit > 0 && shown >= q.Limit {
				return requests, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return requests, nil
		}
		end = string(resp.Kvs[len(resp.Kvs)-1].Key)
	}
}
