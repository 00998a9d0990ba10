package cluster

import (
	"os"
	"slices"
	"testing"
	"time"

	"gwstated/cluster/clustertest"
	"gwstated/config"
	"gwstated/linkstate"
)

// TestFigures measures the figures DESIGN.md asks for. It runs only with
// GWSTATED_FIGURES=1 (it takes a while and asserts nothing about speed):
//
//	GWSTATED_FIGURES=1 go test -run TestFigures -v ./cluster/
func TestFigures(t *testing.T) {
	if os.Getenv("GWSTATED_FIGURES") == "" {
		t.Skip("set GWSTATED_FIGURES=1 to measure")
	}
	e := clustertest.StartEtcd(t, 3)
	t.Run("change-to-all-nodes", func(t *testing.T) { figChange(t, e, 200) })
	t.Run("leader-resign", func(t *testing.T) { figLeaderKill(t, e, false) })
	t.Run("leader-crash", func(t *testing.T) { figLeaderKill(t, e, true) })
}

func allDecide(cfg *config.Config) { cfg.Cluster.Decide = "all" }

// figChange: an observation change on one node → verdict committed by the
// leader → delivered on every node.
func figChange(t *testing.T, e *clustertest.Etcd, rounds int) {
	c := newCluster(t, e)
	nodes := []*tnode{c.start("fw1", allDecide), c.start("fw2", allDecide), c.start("fw3", allDecide)}
	c.waitMembers(nodes, 3)
	for _, n := range nodes {
		n.Publish(obs("isp1", up))
		n.Publish(obs("isp2", up))
	}
	for _, n := range nodes {
		n.waitVerdict(t, 10*time.Second, "both up", both(linkIs("isp1", up), linkIs("isp2", up)))
	}
	c.waitOneLeader(nodes)
	var lat []time.Duration
	src := nodes[2] // not necessarily the leader
	for i := range rounds {
		st := down
		if i%2 == 1 {
			st = up
		}
		cur, _ := src.last()
		seq := cur.Seq + 1
		t0 := time.Now()
		src.Publish(obs("isp1", st))
		var worst time.Duration
		waitFor(t, 10*time.Second, "verdict on every node", func() bool {
			worst = 0
			for _, n := range nodes {
				n.mu.Lock()
				at, ok := n.seen[seq]
				n.mu.Unlock()
				if !ok {
					return false
				}
				worst = max(worst, at.Sub(t0))
			}
			return true
		})
		for _, n := range nodes {
			n.waitVerdict(t, 5*time.Second, "isp1 "+st.String(), linkIs("isp1", st))
		}
		lat = append(lat, worst)
	}
	slices.Sort(lat)
	t.Logf("observation change → verdict on all 3 nodes, %d changes: p50 %v p90 %v p99 %v max %v",
		len(lat), lat[len(lat)/2], lat[len(lat)*90/100], lat[len(lat)*99/100], lat[len(lat)-1])
}

// figLeaderKill: the leader goes away at t0 while a link changes; how long
// until the next verdict is committed and seen by the remaining nodes.
// resign: its context is cancelled (SIGTERM: resigns, revokes its lease).
// crash: its etcd client is closed under it (no resign, the lease expires
// after session_ttl), as when the box loses its etcd link.
func figLeaderKill(t *testing.T, e *clustertest.Etcd, crash bool) {
	var res []time.Duration
	for range 3 {
		c := newCluster(t, e)
		var clis []Option
		nodes := make([]*tnode, 3)
		clients := make([]interface{ Close() error }, 3)
		for i, name := range []string{"fw1", "fw2", "fw3"} {
			cli := newTestClient(t, e.Endpoints())
			clients[i] = cli
			clis = []Option{WithClient(cli)}
			nodes[i] = c.start(name, nil, clis...)
		}
		c.waitMembers(nodes, 3)
		for _, n := range nodes {
			n.Publish(obs("isp1", up))
			n.Publish(obs("isp2", up))
		}
		for _, n := range nodes {
			n.waitVerdict(t, 10*time.Second, "both up", both(linkIs("isp1", up), linkIs("isp2", up)))
		}
		l := c.waitOneLeader(nodes)
		rest := slices.DeleteFunc(slices.Clone(nodes), func(n *tnode) bool { return n == l })
		t0 := time.Now()
		if crash {
			clients[slices.Index(nodes, l)].Close()
		} else {
			l.cancel()
		}
		// A crashed leader's gossip still runs here: it sees the change too,
		// so only a new leader's commit can deliver it.
		for _, n := range nodes {
			if n != l || crash {
				n.Publish(obs("isp2", down))
			}
		}
		var worst time.Duration
		for _, n := range rest {
			n.waitVerdict(t, 15*time.Second, "isp2 down by a new leader", func(v VerdictRecord) bool {
				return v.Links["isp2"].State == linkstate.Down && v.Leader != l.Name()
			})
			worst = max(worst, time.Since(t0))
		}
		res = append(res, worst)
	}
	ttl := time.Second
	t.Logf("leader %s → next verdict on the other nodes (session_ttl %v): %v", map[bool]string{false: "resigns", true: "crashes"}[crash], ttl, res)
}
