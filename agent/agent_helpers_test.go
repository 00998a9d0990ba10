package agent

import (
	"encoding/json"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/cluster"
	"gwstated/internal/backoff"
)

func clientv3WithPrefix() clientv3.OpOption { return clientv3.WithPrefix() }

func sameApplied(a, b []byte) bool {
	var x, y cluster.AppliedRecord
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return x.Seq == y.Seq && x.Hash == y.Hash && x.Error == "" && y.Error == "" && x.Seq > 0
}

func pfapplyBackoff(min, max time.Duration) backoff.Backoff {
	return backoff.Backoff{Min: min, Max: max}
}
