package cluster

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"gwstated/cluster/clustertest"
	"gwstated/config"
	"gwstated/linkstate"
)

// Cluster figures, as benchmarks on a three-member etcd (not part of
// make bench: each iteration takes up to seconds):
//
//	go test -run '^$' -bench . -benchtime 200x ./cluster/   (change → all nodes)
//	go test -run '^$' -bench Leader -benchtime 3x ./cluster/

// BenchmarkVerdictToAllNodes: an observation change on one node → verdict
// committed by the leader → delivered on every node of three; one
// iteration is one change. Reports p50, p90, p99 and max.
func BenchmarkVerdictToAllNodes(b *testing.B) {
	e := clustertest.StartEtcd(b, 3)
	lat := figChange(b, e, b.N)
	for _, p := range []int{50, 90, 99} {
		b.ReportMetric(float64(lat[len(lat)*p/100].Microseconds())/1000, fmt.Sprintf("p%d-ms", p))
	}
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkLeaderFailover: the leader resigns (SIGTERM) or crashes (its
// etcd client closed, the lease expires after session_ttl 1 s) while a
// link changes; one iteration is one leader lost, timed to the next
// verdict on the remaining nodes.
func BenchmarkLeaderFailover(b *testing.B) {
	for _, crash := range []bool{false, true} {
		b.Run(map[bool]string{false: "resign", true: "crash"}[crash], func(b *testing.B) {
			e := clustertest.StartEtcd(b, 3)
			res := figLeaderKill(b, e, crash, b.N)
			slices.Sort(res)
			b.ReportMetric(float64(res[len(res)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(res[len(res)-1].Microseconds())/1000, "max-ms")
		})
	}
}

func allDecide(cfg *config.Config) { cfg.Cluster.Decide = "all" }

// figChange: an observation change on one node → verdict committed by the
// leader → delivered on every node.
func figChange(t testing.TB, e *clustertest.Etcd, rounds int) []time.Duration {
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
	return lat
}

// figLeaderKill: the leader goes away at t0 while a link changes; how long
// until the next verdict is committed and seen by the remaining nodes.
// resign: its context is cancelled (SIGTERM: resigns, revokes its lease).
// crash: its etcd client is closed under it (no resign, the lease expires
// after session_ttl), as when the box loses its etcd link.
func figLeaderKill(t testing.TB, e *clustertest.Etcd, crash bool, rounds int) []time.Duration {
	var res []time.Duration
	for range rounds {
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
	return res
}
