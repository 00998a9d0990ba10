package clustertest

import (
	"context"
	"fmt"
	"gwstated/internal/testkit"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Raft timing of the test members. Short enough that an election after a
// member stops takes a fraction of a second, long enough that a 2-core
// machine running -race does not see spurious elections.
const (
	tickMs     = 25
	electionMs = 300
)

// startTimeout bounds how long the cluster may take to form.
const startTimeout = 30 * time.Second

// Etcd is an in-process etcd cluster.
type Etcd struct {
	t       testing.TB
	mu      sync.Mutex
	members []*member
	closing sync.WaitGroup // members being closed in the background
}

type member struct {
	name      string
	dir       string
	peerURL   url.URL
	clientURL url.URL
	etcd      *embed.Etcd   // nil while stopped
	closed    chan struct{} // closed when the last Close finished (ports free)
}

// StartEtcd starts an etcd cluster of n members and waits until every
// member is ready (has joined and the cluster has a leader). The cluster is
// stopped at t.Cleanup.
func StartEtcd(t testing.TB, n int) *Etcd {
	t.Helper()
	if n < 1 {
		t.Fatalf("clustertest.StartEtcd: %d members; need at least 1", n)
	}
	e := &Etcd{t: t}
	t.Cleanup(e.stopAll)
	for i := range n {
		m := &member{
			name:      fmt.Sprintf("m%d", i),
			dir:       t.TempDir(),
			peerURL:   url.URL{Scheme: "http", Host: freeAddr(t)},
			clientURL: url.URL{Scheme: "http", Host: freeAddr(t)},
		}
		e.members = append(e.members, m)
	}
	initial := e.initialCluster()
	token := fmt.Sprintf("clustertest-%d", time.Now().UnixNano())
	for _, m := range e.members {
		cfg := m.config(initial, token, embed.ClusterStateFlagNew)
		s, err := embed.StartEtcd(cfg)
		if err != nil {
			t.Fatalf("clustertest: start etcd member %s (peer %s, client %s): %v", m.name, m.peerURL.Host, m.clientURL.Host, err)
		}
		m.etcd = s
	}
	for _, m := range e.members {
		select {
		case <-m.etcd.Server.ReadyNotify():
		case err := <-m.etcd.Err():
			t.Fatalf("clustertest: etcd member %s failed: %v", m.name, err)
		case <-time.After(startTimeout):
			t.Fatalf("clustertest: etcd member %s not ready after %s", m.name, startTimeout)
		}
	}
	return e
}

// freeAddr returns a loopback host:port that was free a moment ago and was
// not handed out before in this process (testkit.FreeAddr).
func freeAddr(t testing.TB) string { return testkit.FreeAddr(t) }

// initialCluster is etcd's --initial-cluster for every member: name=peer
// URL, comma separated.
func (e *Etcd) initialCluster() string {
	initial := make([]string, len(e.members))
	for i, m := range e.members {
		initial[i] = m.name + "=" + m.peerURL.String()
	}
	return strings.Join(initial, ",")
}

func (m *member) config(initial, token, state string) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenPeerUrls = []url.URL{m.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.peerURL}
	cfg.ListenClientUrls = []url.URL{m.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.clientURL}
	cfg.InitialCluster = initial
	cfg.InitialClusterToken = token
	cfg.ClusterState = state
	cfg.TickMs = tickMs
	cfg.ElectionMs = electionMs
	cfg.PreVote = true
	cfg.UnsafeNoFsync = true // test data; fsync costs seconds on a busy disk
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.Metrics = "basic"
	return cfg
}

// Endpoints returns every member's client URL, stopped members included.
func (e *Etcd) Endpoints() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	eps := make([]string, len(e.members))
	for i, m := range e.members {
		eps[i] = m.clientURL.String()
	}
	return eps
}

// Endpoint returns member i's client URL.
func (e *Etcd) Endpoint(i int) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.members[i].clientURL.String()
}

// Client returns a client of every member, closed at t.Cleanup.
func (e *Etcd) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   e.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("clustertest: etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Stop stops member i (a no-op if it is stopped). Its raft node stops at
// once, so the cluster loses the member when Stop returns; closing its
// listeners finishes in the background (etcd waits up to its request
// timeout for open client streams). Its data stays for Restart.
func (e *Etcd) Stop(i int) {
	e.mu.Lock()
	m := e.members[i]
	s := m.etcd
	m.etcd = nil
	if s == nil {
		e.mu.Unlock()
		return
	}
	done := make(chan struct{})
	m.closed = done
	e.mu.Unlock()
	s.Server.HardStop()
	e.closing.Go(func() {
		defer close(done)
		s.Close()
	})
}

// Restart starts a stopped member i again on its old ports and data, and
// waits until it is ready; ready needs a quorum, so restart enough members
// for one before expecting this to return.
func (e *Etcd) Restart(i int) {
	e.t.Helper()
	e.mu.Lock()
	m := e.members[i]
	if m.etcd != nil {
		e.mu.Unlock()
		return
	}
	closed := m.closed
	initial := e.initialCluster()
	e.mu.Unlock()
	if closed != nil {
		<-closed // the old listeners hold the ports until then
	}
	cfg := m.config(initial, "", embed.ClusterStateFlagExisting)
	var s *embed.Etcd
	var err error
	// The ports were released a moment ago; the kernel may still hold them briefly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err = embed.StartEtcd(cfg)
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(50 * time.Millisecond) // waiting on the kernel, not on another goroutine
	}
	if err != nil {
		e.t.Fatalf("clustertest: restart etcd member %s: %v", m.name, err)
	}
	e.mu.Lock()
	m.etcd = s
	e.mu.Unlock()
	select {
	case <-s.Server.ReadyNotify():
	case err := <-s.Err():
		e.t.Fatalf("clustertest: restarted etcd member %s failed: %v", m.name, err)
	case <-time.After(startTimeout):
		e.t.Fatalf("clustertest: restarted etcd member %s not ready after %s (is there a quorum?)", m.name, startTimeout)
	}
}

// WaitHealthy waits until a linearizable read succeeds (the cluster has a
// quorum and a leader) or ctx ends.
func (e *Etcd) WaitHealthy(ctx context.Context, t testing.TB) {
	t.Helper()
	cli := e.Client(t)
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Get(rctx, "health")
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("clustertest: etcd not healthy: %v", err)
		case <-time.After(20 * time.Millisecond): // polling a condition, with a deadline
		}
	}
}

func (e *Etcd) stopAll() {
	for i := range e.members {
		e.Stop(i)
	}
	e.closing.Wait()
}
