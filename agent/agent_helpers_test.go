package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/cluster"
	"gwstated/config"
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

// runAgent runs one agent (node fw1 of yaml, a scripted prober, node as its
// cluster node, state under dir) for the rest of the test; o carries what
// the test adds (Log, Runner, Applied, ...). The agent is stopped when the
// test ends, and an error it returns fails the test.
func runAgent(t testing.TB, dir, yaml string, node Node, o Options) {
	t.Helper()
	o.StateDir = filepath.Join(dir, "state")
	o.LoadConfig = func() (*config.Config, error) { return config.Parse([]byte(yaml), "fw1") }
	o.NewProber = func(*config.Config, *slog.Logger) (Prober, error) { return newScripted(), nil }
	o.NewNode = func(*config.Config, *slog.Logger) (Node, error) { return node, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}
