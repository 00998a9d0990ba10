package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gwstated/cluster"
	"gwstated/cluster/clustertest"
	"gwstated/config"
	"gwstated/internal/testkit"
	"gwstated/linkstate"
	"gwstated/pfapply"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, clustertest.IgnoreEtcd()...) }

// scripted is a Prober whose observations the test sets.
type scripted struct {
	mu    sync.Mutex
	obs   map[string]linkstate.State
	emit  func(linkstate.Observation)
	ready chan struct{}
	seq   uint64
}

func newScripted(links ...string) *scripted {
	s := &scripted{obs: map[string]linkstate.State{}, ready: make(chan struct{})}
	for _, l := range links {
		s.obs[l] = linkstate.Up
	}
	return s
}

func (s *scripted) Run(ctx context.Context, emit func(linkstate.Observation)) error {
	s.mu.Lock()
	s.emit = emit
	for l, st := range s.obs {
		s.seq++
		emit(linkstate.Observation{Link: l, State: st, Since: time.Now(), Seq: s.seq})
	}
	close(s.ready)
	s.mu.Unlock()
	<-ctx.Done()
	return nil
}

func (s *scripted) set(link string, st linkstate.State) {
	<-s.ready
	s.mu.Lock()
	defer s.mu.Unlock()
	s.obs[link] = st
	s.seq++
	loss := 0.0
	if st == linkstate.Down {
		loss = 100
	}
	s.emit(linkstate.Observation{Link: link, State: st, Loss: loss, Since: time.Now(), Seq: s.seq})
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

const testConfig = `
cluster:
  name: agenttest
  gossip:
    insecure: true
    bind: 127.0.0.1:%[1]d
    join: [127.0.0.1:%[1]d, 127.0.0.1:%[2]d]
  etcd: {endpoints: [%[3]s], session_ttl: 2s}
lan: {interface: dc0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: fxp0, gateway: 198.51.100.100}
  - {name: isp2, interface: fxp1, gateway: 203.0.113.200}
sticky: [{name: https, proto: tcp, ports: [443], link: isp1}]
all_down: none
pf: {backend: dir, dir: %[4]s}
metrics: {listen: ""}
nodes:
  fw1: {gossip: {bind: 127.0.0.1:%[1]d}}
  fw2: {gossip: {bind: 127.0.0.1:%[2]d}}
`

type testNode struct {
	name   string
	dir    string
	prober *scripted
	cancel context.CancelFunc
	done   chan error
}

func startAgents(t *testing.T, etcd string) []*testNode {
	t.Helper()
	p1, p2 := freePort(t), freePort(t)
	var nodes []*testNode
	for _, name := range []string{"fw1", "fw2"} {
		dir := t.TempDir()
		yaml := fmt.Sprintf(testConfig, p1, p2, etcd, filepath.Join(dir, "anchors"))
		n := &testNode{name: name, dir: dir, prober: newScripted("isp1", "isp2"), done: make(chan error, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		n.cancel = cancel
		log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
		opts := Options{
			StateDir: filepath.Join(dir, "state"),
			Log:      log.With("test_node", name),
			LoadConfig: func() (*config.Config, error) {
				return config.Parse([]byte(yaml), name)
			},
			NewProber: func(*config.Config, *slog.Logger) (Prober, error) { return n.prober, nil },
		}
		go func() { n.done <- Run(ctx, opts) }()
		nodes = append(nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.cancel()
		}
		for _, n := range nodes {
			if err := <-n.done; err != nil {
				t.Errorf("%s: Run: %v", n.name, err)
			}
		}
	})
	return nodes
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFile waits until every node's anchor file satisfies ok.
func waitFile(t *testing.T, nodes []*testNode, anchor string, ok func(string) bool) {
	t.Helper()
	err := testkit.Wait(t.Context(), 20*time.Second, "anchor "+anchor+" as expected on every node", func() (bool, error) {
		for _, n := range nodes {
			b, _ := os.ReadFile(filepath.Join(n.dir, "anchors", anchor+".conf"))
			if !ok(string(b)) {
				return false, fmt.Errorf("last seen %s: %s", n.name, b)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAgentsApplySameVerdict(t *testing.T) {
	etcd := clustertest.StartEtcd(t, 1)
	nodes := startAgents(t, etcd.Endpoints()[0])

	both := func(s string) bool {
		return strings.Contains(s, "198.51.100.100") && strings.Contains(s, "203.0.113.200")
	}
	waitFile(t, nodes, "loadbalance", both)

	// isp1 fails as seen by both nodes: both firewalls stop balancing to it
	// and its nat anchor empties.
	for _, n := range nodes {
		n.prober.set("isp1", linkstate.Down)
	}
	waitFile(t, nodes, "loadbalance", func(s string) bool {
		return !strings.Contains(s, "198.51.100.100") && strings.Contains(s, "203.0.113.200")
	})
	waitFile(t, nodes, "nat-isp1", func(s string) bool { return strings.TrimSpace(s) == "" })
	waitFile(t, nodes, "applications", func(s string) bool { return strings.Contains(s, "203.0.113.200") })

	// Both nodes hold the same ruleset hash and saved the verdict locally.
	for _, n := range nodes {
		err := testkit.Wait(t.Context(), 10*time.Second, n.name+": state file records isp1 down", func() (bool, error) {
			st, ok, err := readState(filepath.Join(n.dir, "state"))
			if err != nil {
				t.Fatalf("%s: state file: %v", n.name, err)
			}
			return ok && st.Verdict.Links["isp1"].State == linkstate.Down, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitEqualApplied(t, nodes)

	// isp1 comes back.
	for _, n := range nodes {
		n.prober.set("isp1", linkstate.Up)
	}
	waitFile(t, nodes, "loadbalance", both)
	waitFile(t, nodes, "nat-isp1", func(s string) bool { return strings.Contains(s, "nat-to") })

	// Applied records in etcd name the same seq and hash for both nodes.
	cli := etcd.Client(t)
	keys := cluster.NewKeys("agenttest")
	err := testkit.Wait(t.Context(), 10*time.Second, "applied records agree", func() (bool, error) {
		resp, err := cli.Get(context.Background(), keys.AppliedPrefix(), clientv3WithPrefix())
		if err != nil {
			return false, err
		}
		if len(resp.Kvs) != 2 || !sameApplied(resp.Kvs[0].Value, resp.Kvs[1].Value) {
			return false, fmt.Errorf("%v", resp.Kvs)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitEqualApplied(t *testing.T, nodes []*testNode) {
	t.Helper()
	err := testkit.Wait(t.Context(), 10*time.Second, "both nodes' applied.json on the same seq and hash", func() (bool, error) {
		// applied_at is each node's own clock: compare seq and hash.
		a, errA := readAppliedFile(filepath.Join(nodes[0].dir, "anchors"))
		b, errB := readAppliedFile(filepath.Join(nodes[1].dir, "anchors"))
		if errA == nil && errB == nil && a.Hash != "" && a.Seq == b.Seq && a.Hash == b.Hash {
			return true, nil
		}
		return false, fmt.Errorf("%+v (%v) vs %+v (%v)", a, errA, b, errB)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readAppliedFile(dir string) (pfapply.AppliedFile, error) {
	d, err := pfapply.NewDir(dir)
	if err != nil {
		return pfapply.AppliedFile{}, err
	}
	return d.ReadApplied()
}
