package etcdmember

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"gwstated/cluster/clustertest"
	"gwstated/config"
	"gwstated/internal/testkit"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, clustertest.IgnoreEtcd()...) }

// testLog is testkit.Log: GWSTATED_TEST_LOG=1 shows the records.
func testLog() *slog.Logger { return testkit.Log() }

func freeAddr(t *testing.T) string { return testkit.FreeAddr(t) }

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
		cfg := config.Default()
		cfg.Node = n
		cfg.Cluster.Name = "emb"
		cfg.Nodes = nodes
		cfg.Cluster.Etcd.Embed = &config.Embed{DataDir: t.TempDir(), InitialCluster: initial}
		cfg.ApplyDefaults()
		cfgs[i] = &cfg
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	members := make([]*Member, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i := range names {
		wg.Go(func() { members[i], errs[i] = Start(ctx, cfgs[i], testLog()) })
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
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfgs[0].EtcdEndpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
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
