package cluster

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"gwstated/cluster/clustertest"
	"gwstated/config"
)

func TestLeaderKilledNextTransitionCommitted(t *testing.T) {
	e := clustertest.StartEtcd(t, 3)
	c := newCluster(t, e)
	nodes := []*tnode{c.start("fw1", nil), c.start("fw2", nil), c.start("fw3", nil)}
	c.waitMembers(nodes, 3)
	for _, n := range nodes {
		n.Publish(obs("isp1", up))
		n.Publish(obs("isp2", up))
	}
	for _, n := range nodes {
		n.waitVerdict(t, 10*time.Second, "both up", both(linkIs("isp1", up), linkIs("isp2", up)))
	}
	old := c.waitOneLeader(nodes)
	old.stop() // resigns, revokes its lease, leaves gossip
	rest := slices.DeleteFunc(slices.Clone(nodes), func(n *tnode) bool { return n == old })
	c.waitMembers(rest, 2)
	for _, n := range rest {
		n.Publish(obs("isp2", down))
	}
	nl := c.waitOneLeader(rest)
	for _, n := range rest {
		v := n.waitVerdict(t, 10*time.Second, "isp2 down from the new leader", linkIs("isp2", down))
		if v.Leader != nl.Name() {
			t.Errorf("%s: verdict by %q, want new leader %q", n.Name(), v.Leader, nl.Name())
		}
	}
	audit, err := NewStore(e.Client(t), c.name, 0).Audit(ctxT(t, 5*time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	last := audit[len(audit)-1]
	if last.Link != "isp2" || last.To != down || last.Leader != nl.Name() || last.WithoutEtcd {
		t.Errorf("last audit record %+v; want isp2 up→down by %s", last, nl.Name())
	}
}

func TestDeposedLeaderWriteFenced(t *testing.T) {
	e := clustertest.StartEtcd(t, 3)
	cli := e.Client(t)
	ctx := ctxT(t, 20*time.Second)
	st := NewStore(cli, "fence", 0)
	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(1))
	if err != nil {
		t.Fatal(err)
	}
	e1 := concurrency.NewElection(s1, st.Keys.Election())
	if err := e1.Campaign(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	f1 := Fence{Key: e1.Key(), Rev: e1.Rev()}
	rec := VerdictRecord{Leader: "old"}
	rec.Seq = 1
	if _, err := st.CommitVerdict(ctx, f1, rec, []AuditRecord{{Kind: KindTransition, Link: "isp1"}}); err != nil {
		t.Fatalf("leader's write: %v", err)
	}
	// The old leader's lease ends (crash: its session is closed, the key goes).
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := concurrency.NewSession(cli, concurrency.WithTTL(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	e2 := concurrency.NewElection(s2, st.Keys.Election())
	if err := e2.Campaign(ctx, "new"); err != nil {
		t.Fatal(err)
	}
	stale := VerdictRecord{Leader: "old"}
	stale.Seq = 2
	_, err = st.CommitVerdict(ctx, f1, stale, []AuditRecord{{Kind: KindTransition, Link: "isp1"}})
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("deposed leader's write: err = %v, want ErrNotLeader", err)
	}
	got, _, _, err := st.Verdict(ctx)
	if err != nil || got.Seq != 1 || got.Leader != "old" || got.AuditSeq != 1 {
		t.Fatalf("verdict after the fenced write = %+v (err %v); want seq 1, audit seq 1", got, err)
	}
	fresh := VerdictRecord{Leader: "new"}
	fresh.Seq = 2
	if _, err := st.CommitVerdict(ctx, Fence{Key: e2.Key(), Rev: e2.Rev()}, fresh, nil); err != nil {
		t.Fatalf("new leader's write: %v", err)
	}
}

func TestEtcdQuorumLossHold(t *testing.T) {
	e := clustertest.StartEtcd(t, 3)
	c := newCluster(t, e)
	a, b := c.start("fw1", nil), c.start("fw2", nil)
	nodes := []*tnode{a, b}
	c.waitMembers(nodes, 2)
	for _, n := range nodes {
		n.Publish(obs("isp1", up))
		n.Publish(obs("isp2", up))
	}
	var held VerdictRecord
	for _, n := range nodes {
		held = n.waitVerdict(t, 10*time.Second, "both up", both(linkIs("isp1", up), linkIs("isp2", up)))
	}
	e.Stop(1)
	e.Stop(2)
	waitFor(t, 15*time.Second, "hold mode on both nodes", func() bool {
		return a.Status().Mode == ModeHold && b.Status().Mode == ModeHold
	})
	for _, n := range nodes {
		n.Publish(obs("isp1", down))
	}
	// Both nodes have each other's down view: in gossip mode they would
	// decide isp1 down now. In hold mode nothing new is delivered.
	waitFor(t, 5*time.Second, "gossip views with isp1 down", func() bool {
		for _, n := range nodes {
			for _, v := range n.g.View() {
				if v.Links["isp1"].State != down {
					return false
				}
			}
		}
		return true
	})
	for _, n := range nodes {
		if v, _ := n.last(); v.Seq != held.Seq || n.Status().Verdict.Seq != held.Seq {
			t.Fatalf("%s: verdict %d delivered in hold mode; want %d kept", n.Name(), v.Seq, held.Seq)
		}
	}
	e.Restart(1)
	waitFor(t, 20*time.Second, "etcd mode again", func() bool {
		return a.Status().Mode == ModeEtcd && b.Status().Mode == ModeEtcd
	})
	for _, n := range nodes {
		n.waitVerdict(t, 10*time.Second, "isp1 down once etcd is back", linkIs("isp1", down))
	}
}

func TestEtcdQuorumLossGossipBackfill(t *testing.T) {
	e := clustertest.StartEtcd(t, 3)
	c := newCluster(t, e)
	edit := func(cfg *config.Config) { cfg.Cluster.OnEtcdLoss = OnEtcdLossGossip }
	a, b := c.start("fw1", edit), c.start("fw2", edit)
	nodes := []*tnode{a, b}
	c.waitMembers(nodes, 2)
	for _, n := range nodes {
		n.Publish(obs("isp1", up))
		n.Publish(obs("isp2", up))
	}
	var before VerdictRecord
	for _, n := range nodes {
		before = n.waitVerdict(t, 10*time.Second, "both up", both(linkIs("isp1", up), linkIs("isp2", up)))
	}
	e.Stop(1)
	e.Stop(2)
	waitFor(t, 15*time.Second, "gossip mode on both nodes", func() bool {
		return a.Status().Mode == ModeGossip && b.Status().Mode == ModeGossip
	})
	for _, n := range nodes {
		n.Publish(obs("isp1", down))
	}
	// Each node decides on its own sequence of gossip views (a node may
	// first see only its own down view and report itself impaired), so the
	// seq numbers may differ; the decision they end on is the same.
	var decided []VerdictRecord
	for _, n := range nodes {
		v := n.waitVerdict(t, 10*time.Second, "isp1 down decided on gossip", both(linkIs("isp1", down), linkIs("isp2", up)))
		if v.Seq <= before.Seq {
			t.Fatalf("%s: gossip verdict seq %d, want > %d", n.Name(), v.Seq, before.Seq)
		}
		decided = append(decided, v)
	}
	if !slices.Equal(decided[0].Active, decided[1].Active) || len(decided[0].Impaired)+len(decided[1].Impaired) != 0 {
		t.Errorf("nodes ended on different decisions on the same gossip view:\n%+v\n%+v", decided[0].Verdict, decided[1].Verdict)
	}
	e.Restart(1)
	st := NewStore(e.Client(t), c.name, 0)
	waitFor(t, 20*time.Second, "the gossip decision backfilled into etcd", func() bool {
		recs, err := st.Audit(ctxT(t, time.Second), 0)
		if err != nil {
			return false
		}
		for _, r := range recs {
			if r.WithoutEtcd && r.Link == "isp1" && r.From == up && r.To == down && r.VerdictSeq > before.Seq {
				return true
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "no node keeps decisions made without etcd", func() bool {
		return a.Status().Pending == 0 && b.Status().Pending == 0
	})
	rec, _, _, err := st.Verdict(ctxT(t, 5*time.Second))
	if err != nil || rec.Seq <= before.Seq || rec.Links["isp1"].State != down {
		t.Fatalf("etcd verdict after backfill = %+v (err %v); want isp1 down, seq > %d", rec, err, before.Seq)
	}
}
