package cluster

import (
	"testing"
	"time"

	"gwstated/cluster/clustertest"
	"gwstated/config"
	"gwstated/linkstate"
)

const (
	up   = linkstate.Up
	down = linkstate.Down
)

func TestConvergence(t *testing.T) {
	e := clustertest.StartEtcd(t, 3)
	c := newCluster(t, e)
	a, b, w := c.start("fw1", nil), c.start("fw2", nil), c.start("wit", nil, WithWitness())
	all := []*tnode{a, b, w}
	c.waitMembers(all, 3)
	for _, n := range []*tnode{a, b} {
		n.Publish(obs("isp1", up))
		n.Publish(obs("isp2", up))
	}
	want := both(linkIs("isp1", up), linkIs("isp2", up))
	var seq uint64
	for _, n := range all {
		v := n.waitVerdict(t, 10*time.Second, "isp1 and isp2 up", want)
		if seq == 0 {
			seq = v.Seq
		}
	}
	l := c.waitOneLeader(all)
	if l == w {
		t.Fatalf("the witness %s became leader", w.Name())
	}
	// Every node ends on the same verdict: the one in etcd.
	rec, _, ok, err := NewStore(e.Client(t), c.name, 0).Verdict(ctxT(t, 5*time.Second))
	if err != nil || !ok {
		t.Fatalf("read verdict: ok=%v err=%v", ok, err)
	}
	for _, n := range all {
		got := n.waitVerdict(t, 5*time.Second, "the etcd verdict", func(v VerdictRecord) bool { return v.Seq == rec.Seq })
		if !got.Verdict.Equal(rec.Verdict) {
			t.Errorf("%s: verdict %+v differs from etcd's %+v", n.Name(), got.Verdict, rec.Verdict)
		}
		if got.Leader != l.Name() {
			t.Errorf("%s: verdict leader %q, want %q", n.Name(), got.Leader, l.Name())
		}
	}
	// gwctl status reads nodes/<node>.
	st := NewStore(e.Client(t), c.name, 0)
	waitFor(t, 5*time.Second, "three node records", func() bool {
		recs, err := st.Nodes(ctxT(t, time.Second))
		return err == nil && len(recs) == 3 && recs[l.Name()].Leader && recs["fw1"].Observations["isp1"].State == up
	})
}

func TestDecideModesAndImpaired(t *testing.T) {
	e := clustertest.StartEtcd(t, 3)
	for _, tc := range []struct {
		mode string
		want linkstate.State
	}{{"any", up}, {"all", down}} {
		t.Run(tc.mode, func(t *testing.T) {
			c := newCluster(t, e)
			edit := func(cfg *config.Config) { cfg.Cluster.Decide = tc.mode }
			a, b := c.start("fw1", edit), c.start("fw2", edit)
			c.waitMembers([]*tnode{a, b}, 2)
			a.Publish(obs("isp2", up))
			b.Publish(obs("isp2", up))
			a.Publish(obs("isp1", down))
			b.Publish(obs("isp1", up))
			for _, n := range []*tnode{a, b} {
				v := n.waitVerdict(t, 10*time.Second, "isp1 "+tc.want.String(), both(linkIs("isp1", tc.want), linkIs("isp2", up)))
				if tc.want == up {
					if len(v.Impaired) != 1 || v.Impaired[0] != (linkstate.Impairment{Node: "fw1", Link: "isp1"}) {
						t.Errorf("%s: impaired = %+v, want fw1 on isp1", n.Name(), v.Impaired)
					}
				} else if len(v.Impaired) != 0 {
					t.Errorf("%s: impaired = %+v with isp1 down, want none", n.Name(), v.Impaired)
				}
			}
		})
	}
}
