package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"gwstated/cluster/clustertest"
	"gwstated/config"
	"gwstated/internal/testkit"
	"gwstated/linkstate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, clustertest.IgnoreEtcd()...) }

// testLog is testkit.Log: GWSTATED_TEST_LOG=1 shows the records.
func testLog() *slog.Logger { return testkit.Log() }

var clusterSeq atomic.Int64

// testConfig is one node's config of a test cluster on loopback: the
// defaults (config.Default), with gossip and etcd timings short enough for
// tests and no flap damping, so tests flip links at will.
func testConfig(t testing.TB, cluster, node, keyFile string, eps []string) *config.Config {
	cfg := config.Default()
	cfg.Node = node
	cfg.Cluster.Name = cluster
	g := &cfg.Cluster.Gossip
	g.Bind, g.KeyFile = "127.0.0.1:0", keyFile
	g.ProbeInterval, g.ProbeTimeout, g.SuspicionMult = 100*time.Millisecond, 50*time.Millisecond, 2
	g.GossipInterval, g.PushPullInterval = 50*time.Millisecond, time.Second
	e := &cfg.Cluster.Etcd
	e.Endpoints = eps
	e.DialTimeout, e.RequestTimeout, e.SessionTTL = 500*time.Millisecond, time.Second, time.Second
	cfg.Links = []config.Link{
		{Name: "isp1", Interface: "em0", Tier: 1},
		{Name: "isp2", Interface: "em1", Tier: 1},
	}
	cfg.Damping = config.Damping{}
	cfg.Nodes = map[string]config.NodeSpec{}
	return &cfg
}

func writeKey(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "gossip.key")
	if err := WriteKeyFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// tnode is a running Node in a test and every verdict it delivered.
type tnode struct {
	*Node
	cancel context.CancelFunc
	done   chan struct{}
	runErr error

	mu   sync.Mutex
	got  []VerdictRecord
	seen map[uint64]time.Time // seq -> when first delivered (onDeliver)
}

func (tn *tnode) last() (VerdictRecord, bool) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if len(tn.got) == 0 {
		return VerdictRecord{}, false
	}
	return tn.got[len(tn.got)-1], true
}

func (tn *tnode) stop() {
	tn.cancel()
	<-tn.done
}

type tcluster struct {
	t     testing.TB
	etcd  *clustertest.Etcd
	name  string
	key   string
	nodes []*tnode
	log   *slog.Logger // nil: testLog()
}

func newCluster(t testing.TB, etcd *clustertest.Etcd) *tcluster {
	return &tcluster{t: t, etcd: etcd, name: fmt.Sprintf("t%d", clusterSeq.Add(1)), key: writeKey(t)}
}

// start runs a node; edit changes its config first.
func (c *tcluster) start(name string, edit func(*config.Config), opts ...Option) *tnode {
	t := c.t
	t.Helper()
	cfg := testConfig(t, c.name, name, c.key, c.etcd.Endpoints())
	if len(c.nodes) > 0 {
		cfg.Cluster.Gossip.Join = []string{c.nodes[0].GossipAddr()}
	}
	if edit != nil {
		edit(cfg)
	}
	log := c.log
	if log == nil {
		log = testLog()
	}
	n, err := New(cfg, log, opts...)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &tnode{Node: n, cancel: cancel, done: make(chan struct{}), seen: map[uint64]time.Time{}}
	n.onDeliver = func(v VerdictRecord) {
		tn.mu.Lock()
		if _, ok := tn.seen[v.Seq]; !ok {
			tn.seen[v.Seq] = time.Now()
		}
		tn.mu.Unlock()
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(tn.done)
		tn.runErr = n.Run(ctx)
	})
	wg.Go(func() {
		for v := range n.Verdicts() {
			tn.mu.Lock()
			tn.got = append(tn.got, v)
			tn.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if tn.runErr != nil {
			t.Errorf("%s: Run: %v", name, tn.runErr)
		}
	})
	select {
	case <-n.Ready():
	case <-tn.done:
		t.Fatalf("%s: Run returned before ready: %v", name, tn.runErr)
	}
	c.nodes = append(c.nodes, tn)
	return tn
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, d, what, cond)
}

// waitVerdict waits until tn's newest verdict satisfies cond and returns it.
func (tn *tnode) waitVerdict(t testing.TB, d time.Duration, what string, cond func(VerdictRecord) bool) VerdictRecord {
	t.Helper()
	var got VerdictRecord
	waitFor(t, d, tn.Name()+": "+what, func() bool {
		v, ok := tn.last()
		got = v
		return ok && cond(v)
	})
	return got
}

func linkIs(link string, s linkstate.State) func(VerdictRecord) bool {
	return func(v VerdictRecord) bool { return v.Links[link].State == s }
}

func both(fs ...func(VerdictRecord) bool) func(VerdictRecord) bool {
	return func(v VerdictRecord) bool {
		for _, f := range fs {
			if !f(v) {
				return false
			}
		}
		return true
	}
}

var obsSeq atomic.Uint64

func obs(link string, s linkstate.State) linkstate.Observation {
	return linkstate.Observation{Link: link, State: s, Since: time.Now(), Seq: obsSeq.Add(1)}
}

// leaders returns the nodes that say they lead.
func (c *tcluster) leaders(among []*tnode) []*tnode {
	var out []*tnode
	for _, n := range among {
		if n.Status().IsLeader {
			out = append(out, n)
		}
	}
	return out
}

func (c *tcluster) waitOneLeader(among []*tnode) *tnode {
	c.t.Helper()
	var l *tnode
	waitFor(c.t, 15*time.Second, "one leader", func() bool {
		ls := c.leaders(among)
		if len(ls) != 1 {
			return false
		}
		l = ls[0]
		for _, n := range among {
			if n.Status().Leader != l.Name() {
				return false
			}
		}
		return true
	})
	return l
}

func (c *tcluster) waitMembers(among []*tnode, alive int) {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, fmt.Sprintf("%d alive gossip members", alive), func() bool {
		for _, n := range among {
			k := 0
			for _, m := range n.Status().Members {
				if m.State == MemberAlive || m.State == MemberSuspect {
					k++
				}
			}
			if k != alive {
				return false
			}
		}
		return true
	})
}

func newTestClient(t testing.TB, eps []string) *clientv3.Client {
	t.Helper()
	cli, err := NewClient(context.Background(), config.Etcd{Endpoints: eps, DialTimeout: 2 * time.Second}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func freeAddr(t *testing.T) string { return testkit.FreeAddr(t) }
