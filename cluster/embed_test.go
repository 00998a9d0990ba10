package cluster

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"gwstated/config"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestEmbeddedThreeMembers starts fw1, fw2 and a witness as embedded
// members from one config, as the three boxes would, and writes through
// fw1's client URL.
func TestEmbeddedThreeMembers(t *testing.T) {
	names := []string{"fw1", "fw2", "wit"}
	initial := map[string]string{}
	nodes := map[string]config.NodeSpec{}
	for _, n := range names {
		peer, client := "http://"+freeAddr(t), "http://"+freeAddr(t)
		initial[n] = peer
		nodes[n] = config.NodeSpec{Etcd: config.NodeEtcd{PeerURL: peer, ClientURL: client}, Witness: n == "wit"}
	}
	cfgs := make([]*config.Config, len(names))
	for i, n := range names {
		cfg := testConfig(t, "emb", n, "", nil)
		cfg.Nodes = nodes
		cfg.Cluster.Etcd.Endpoints = nil
		cfg.Cluster.Etcd.Embed = &config.Embed{DataDir: t.TempDir(), InitialCluster: initial}
		cfgs[i] = cfg
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	members := make([]*Embedded, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i := range names {
		wg.Go(func() { members[i], errs[i] = StartEmbedded(ctx, cfgs[i], testLog()) })
	}
	wg.Wait()
	defer func() {
		for _, m := range members {
			if m != nil {
				m.Close()
			}
		}
	}()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", names[i], err)
		}
	}
	ec := cfgs[0].Cluster.Etcd
	ec.Endpoints = cfgs[0].EtcdEndpoints()
	cli, err := NewClient(ctx, ec, testLog())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	r, err := cli.MemberList(ctx)
	if err != nil || len(r.Members) != 3 {
		t.Fatalf("member list: %v (err %v), want 3 members", r, err)
	}
}
