package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"gwstated/cluster/clustertest"
	"gwstated/config"
	"gwstated/linkstate"
)

func TestAuditRetentionAndOverrides(t *testing.T) {
	e := clustertest.StartEtcd(t, 1)
	cli := e.Client(t)
	ctx := ctxT(t, 20*time.Second)
	st := NewStore(cli, "ret", 5)
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := campaign(ctx, s, st.Keys.Election(), "fw1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		rec := VerdictRecord{Leader: "fw1"}
		rec.Seq = uint64(i + 1)
		if i == 6 {
			// An operator drains a link between two verdicts: its audit
			// record takes the next sequence number.
			ov := linkstate.Override{Link: "isp1", Action: linkstate.Drain, Reason: "maintenance", By: "ops"}
			if err := st.PutOverride(ctx, ov); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.CommitVerdict(ctx, f, rec, []AuditRecord{{Kind: KindTransition, Link: "isp2", Reason: "r"}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Audit(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, a := range got {
		seqs = append(seqs, a.Seq)
	}
	if want := []uint64{9, 10, 11, 12, 13}; !equalU(seqs, want) {
		t.Fatalf("audit seqs kept = %v, want %v (retention 5 of 13)", seqs, want)
	}
	v, _, _, err := st.Verdict(ctx)
	if err != nil || v.AuditSeq != 13 || v.Seq != 12 {
		t.Fatalf("verdict = seq %d audit_seq %d (err %v); want 12, 13", v.Seq, v.AuditSeq, err)
	}
	ovs, _, err := st.Overrides(ctx)
	if err != nil || len(ovs) != 1 || ovs[0].Action != linkstate.Drain || ovs[0].Since.IsZero() {
		t.Fatalf("overrides = %+v (err %v); want isp1 drained", ovs, err)
	}
	if err := st.DeleteOverride(ctx, "isp1", "ops", "done"); err != nil {
		t.Fatal(err)
	}
	last, err := st.Audit(ctx, 1)
	if err != nil || len(last) != 1 || last[0].Kind != KindOverride || last[0].Override != nil || last[0].Seq != 14 {
		t.Fatalf("last audit = %+v (err %v); want override cleared, seq 14", last, err)
	}
	if ovs, _, _ := st.Overrides(ctx); len(ovs) != 0 {
		t.Fatalf("overrides after delete = %+v", ovs)
	}
}

func equalU(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOverrideDrainsLink(t *testing.T) {
	e := clustertest.StartEtcd(t, 1)
	c := newCluster(t, e)
	a := c.start("fw1", nil)
	a.Publish(obs("isp1", up))
	a.Publish(obs("isp2", up))
	a.waitVerdict(t, 10*time.Second, "both up", both(linkIs("isp1", up), linkIs("isp2", up)))
	st := NewStore(e.Client(t), c.name, 0)
	ov := linkstate.Override{Link: "isp1", Action: linkstate.Drain, Reason: "test", By: "t", Until: time.Now().Add(300 * time.Millisecond)}
	if err := st.PutOverride(ctxT(t, 5*time.Second), ov); err != nil {
		t.Fatal(err)
	}
	a.waitVerdict(t, 10*time.Second, "isp1 drained", linkIs("isp1", down))
	// The override expires on its own: NextEvent wakes the leader.
	a.waitVerdict(t, 10*time.Second, "isp1 back after the drain expired", linkIs("isp1", up))
}

func TestWatchResumesAfterReconnect(t *testing.T) {
	e := clustertest.StartEtcd(t, 3)
	c := newCluster(t, e)
	// A witness never leads; the test is the leader and writes verdicts.
	// The witness's client talks to member 0 only, which is stopped and
	// restarted under it; its session TTL outlives the outage.
	wcli := newTestClient(t, []string{e.Endpoint(0)})
	w := c.start("wit", func(cfg *config.Config) { cfg.Cluster.Etcd.SessionTTL = 30 * time.Second }, WithWitness(), WithClient(wcli))
	cli := newTestClient(t, []string{e.Endpoint(1), e.Endpoint(2)})
	ctx := ctxT(t, 60*time.Second)
	st := NewStore(cli, c.name, 0)
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := campaign(ctx, s, st.Keys.Election(), "test")
	if err != nil {
		t.Fatal(err)
	}
	commit := func(seq uint64) {
		t.Helper()
		rec := VerdictRecord{Leader: "test"}
		rec.Seq = seq
		rec.Links = map[string]linkstate.LinkVerdict{"isp1": {State: up}}
		if _, err := st.CommitVerdict(ctx, f, rec, nil); err != nil {
			t.Fatal(err)
		}
	}
	commit(1)
	w.waitVerdict(t, 10*time.Second, "verdict 1", func(v VerdictRecord) bool { return v.Seq == 1 })
	e.Stop(0)
	for seq := uint64(2); seq <= 5; seq++ {
		commit(seq)
	}
	e.Restart(0)
	w.waitVerdict(t, 20*time.Second, "verdict 5, written while its etcd member was down", func(v VerdictRecord) bool { return v.Seq == 5 })
	// The watch resumed from its revision: every verdict arrived, none was
	// skipped (seen is filled before the Verdicts channel coalesces).
	w.mu.Lock()
	defer w.mu.Unlock()
	for seq := uint64(1); seq <= 5; seq++ {
		if _, ok := w.seen[seq]; !ok {
			t.Errorf("verdict %d was never delivered", seq)
		}
	}
}

func TestGossipKeyMismatchRefused(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	log := testLog()
	cfg := func(name string, key []byte) gossipConfig {
		return gossipConfig{Name: name, Bind: "127.0.0.1:0", Key: key, ProbeInterval: 100 * time.Millisecond, ProbeTimeout: 50 * time.Millisecond}
	}
	a := newGossip("a", false, "h", log)
	if err := a.start(cfg("a", k1)); err != nil {
		t.Fatal(err)
	}
	defer a.Leave(time.Second)
	good := newGossip("good", false, "h", log)
	if err := good.start(cfg("good", k1)); err != nil {
		t.Fatal(err)
	}
	defer good.Leave(time.Second)
	bad := newGossip("bad", false, "h", log)
	if err := bad.start(cfg("bad", k2)); err != nil {
		t.Fatal(err)
	}
	defer bad.Leave(time.Second)
	if _, err := good.Join([]string{a.Addr()}); err != nil {
		t.Fatalf("join with the same key: %v", err)
	}
	if n, err := bad.Join([]string{a.Addr()}); err == nil {
		t.Fatalf("join with another key: joined %d, want an error", n)
	}
	names := func(g *Gossip) []string {
		var out []string
		for _, m := range g.Members() {
			if m.State == MemberAlive || m.State == MemberSuspect {
				out = append(out, m.Name)
			}
		}
		return out
	}
	waitFor(t, 5*time.Second, "a and good see each other", func() bool {
		return strings.Join(names(a), ",") == "a,good" && strings.Join(names(good), ",") == "a,good"
	})
	if got := strings.Join(names(bad), ","); got != "bad" {
		t.Errorf("bad sees %s; want only itself", got)
	}
}

func TestNewRefusesWithoutKey(t *testing.T) {
	cfg := testConfig(t, "k", "fw1", "", []string{"http://127.0.0.1:1"})
	if _, err := New(cfg, testLog()); !errors.Is(err, ErrNoGossipKey) {
		t.Fatalf("New without key: err = %v, want ErrNoGossipKey", err)
	}
	cfg.Cluster.Gossip.Insecure = true
	if _, err := New(cfg, testLog()); err != nil {
		t.Fatalf("New with insecure: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	if err := WriteKeyFile(p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v (err %v), want 0600", fi.Mode().Perm(), err)
	}
	k, err := ReadKeyFile(p)
	if err != nil || len(k) != 32 {
		t.Fatalf("ReadKeyFile = %d bytes, %v", len(k), err)
	}
	if err := WriteKeyFile(p); err == nil {
		t.Fatal("WriteKeyFile overwrote an existing key")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("c2hvcnQ=\n"), 0o600) // "short"
	if _, err := ReadKeyFile(bad); err == nil || !strings.Contains(err.Error(), "want 16, 24 or 32") {
		t.Fatalf("short key: err = %v", err)
	}
}

func TestNewClient(t *testing.T) {
	e := clustertest.StartEtcd(t, 1)
	ctx := ctxT(t, 20*time.Second)
	cli, err := NewClient(ctx, config.Etcd{Endpoints: e.Endpoints(), DialTimeout: 2 * time.Second}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	// Authentication: a root user with a password from a file.
	if _, err := cli.UserAdd(ctx, "root", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	acli, err := NewClient(ctx, config.Etcd{Endpoints: e.Endpoints(), DialTimeout: 2 * time.Second, Username: "root", PasswordFile: pw}, testLog())
	if err != nil {
		t.Fatalf("client with password file: %v", err)
	}
	if _, err := acli.Put(ctx, "k", "v"); err != nil {
		t.Errorf("authenticated put: %v", err)
	}
	if _, err := acli.AuthDisable(ctx); err != nil {
		t.Error(err)
	}
	acli.Close()

	_, err = NewClient(ctx, config.Etcd{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 200 * time.Millisecond}, testLog())
	if !errors.Is(err, ErrEtcdUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "200ms") {
		t.Fatalf("unreachable: err = %v; want ErrEtcdUnreachable naming the endpoint and the timeout", err)
	}
}
