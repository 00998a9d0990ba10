package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"gwstated/cluster/clustertest"
	"gwstated/config"
)

// errLog records every error-level line (node, subject, message) and
// passes everything to testLog's handler.
type errLog struct {
	mu    sync.Mutex
	lines []string
}

func (e *errLog) logger() *slog.Logger {
	return slog.New(&errHandler{e: e, next: testLog().Handler()})
}

// count is how many error lines of node mention s.
func (e *errLog) count(node, s string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, l := range e.lines {
		if strings.Contains(l, "node="+node+" ") && strings.Contains(l, s) {
			n++
		}
	}
	return n
}

type errHandler struct {
	e     *errLog
	attrs []slog.Attr
	next  slog.Handler
}

func (h *errHandler) Enabled(ctx context.Context, l slog.Level) bool { return true }
func (h *errHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		var b strings.Builder
		for _, a := range h.attrs {
			fmt.Fprintf(&b, "%s=%v ", a.Key, a.Value)
		}
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, "%s=%v ", a.Key, a.Value); return true })
		h.e.mu.Lock()
		h.e.lines = append(h.e.lines, b.String()+"msg="+r.Message)
		h.e.mu.Unlock()
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}
func (h *errHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &errHandler{e: h.e, attrs: append(append([]slog.Attr{}, h.attrs...), as...), next: h.next.WithAttrs(as)}
}
func (h *errHandler) WithGroup(string) slog.Handler { return h }

// configured names the nodes of a hostile-input test cluster.
func configured(names ...string) func(*config.Config) {
	return func(cfg *config.Config) {
		cfg.Nodes = map[string]config.NodeSpec{}
		for _, n := range names {
			cfg.Nodes[n] = config.NodeSpec{}
		}
	}
}

// flipper turns isp2 down and up on every node and waits for every node
// to deliver the verdict: the cluster still decides and delivers.
type flipper struct {
	t     *testing.T
	nodes []*tnode
	down  bool
}

func (f *flipper) flip(what string) VerdictRecord {
	f.t.Helper()
	f.down = !f.down
	st := up
	if f.down {
		st = down
	}
	for _, n := range f.nodes {
		n.Publish(obs("isp2", st))
	}
	var v VerdictRecord
	for _, n := range f.nodes {
		v = n.waitVerdict(f.t, 15*time.Second, fmt.Sprintf("isp2 %s after %s", st, what), both(linkIs("isp1", up), linkIs("isp2", st)))
	}
	return v
}

// TestBadInputUnderEveryKey writes garbage, truncated JSON, wrong types
// and 1 MiB values under every key of the etcd layout (and records that
// name links or nodes the configuration does not have): the nodes keep
// deciding and delivering, and each node logs a record it reads at most
// once however often it reads it.
func TestBadInputUnderEveryKey(t *testing.T) {
	e := clustertest.StartEtcd(t, 1)
	cli := e.Client(t)
	c := newCluster(t, e)
	el := &errLog{}
	c.log = el.logger()
	nodes := []*tnode{c.start("fw1", configured("fw1", "fw2")), c.start("fw2", configured("fw1", "fw2"))}
	c.waitMembers(nodes, 2)
	for _, n := range nodes {
		n.Publish(obs("isp1", up))
		n.Publish(obs("isp2", up))
	}
	for _, n := range nodes {
		n.waitVerdict(t, 15*time.Second, "both up", both(linkIs("isp1", up), linkIs("isp2", up)))
	}
	f := &flipper{t: t, nodes: nodes}
	k := NewKeys(c.name)
	values := map[string]string{
		"garbage":   "\x00\xff not json at all }{",
		"truncated": `{"seq": 9, "links": {"isp1": {"state": "up", "obs`,
		"wrongtype": `{"seq": "nine", "links": [1, 2], "active": {"isp1": true}, "node": 7, "action": 3}`,
		"1MiB":      strings.Repeat("A", 1<<20),
	}
	type kcase struct {
		key     string
		readers int  // nodes that read this key: each logs one report (the audit counter: the leader)
		cleanup bool // delete after (agents do not overwrite it)
	}
	keys := []kcase{
		{k.Verdict(), 2, false},
		{k.Override("isp1"), 2, true},
		{k.Applied("fw1"), 0, true},
		{k.Node("fw2"), 0, false}, // fw2 rewrites it on its lease
		{k.Audit(1), 0, false},
		{k.AuditCounter(), 1, false}, // the leader renumbers and rewrites it
	}
	for _, kc := range keys {
		for _, vn := range []string{"garbage", "truncated", "wrongtype", "1MiB"} {
			name := strings.TrimPrefix(kc.key, k.Prefix) + "/" + vn
			t.Run(name, func(t *testing.T) {
				f.t = t
				ctx := ctxT(t, 10*time.Second)
				if _, err := cli.Put(ctx, kc.key, values[vn]); err != nil {
					t.Fatal(err)
				}
				f.flip("writing " + name)
				f.flip("writing " + name + " (again)")
				if kc.key == k.AuditCounter() {
					// The leader repaired it: a number again.
					r, err := cli.Get(ctx, kc.key)
					if err != nil || len(r.Kvs) == 0 || strings.Trim(string(r.Kvs[0].Value), "0123456789") != "" {
						t.Errorf("audit-seq after two commits: %v %v; want a number", r, err)
					}
				}
				total := 0
				for _, n := range nodes {
					got := el.count(n.Name(), "subject="+kc.key+" ")
					if got > 1 {
						t.Errorf("%s logged %d errors about %s, want at most 1", n.Name(), got, kc.key)
					}
					total += got
				}
				if total != kc.readers {
					t.Errorf("%d error lines about %s in all, want %d (one per node that reads it)", total, kc.key, kc.readers)
				}
				if kc.cleanup {
					if _, err := cli.Delete(ctx, kc.key); err != nil {
						t.Fatal(err)
					}
				}
				// Reset the counts: the next value is a new problem.
				el.mu.Lock()
				el.lines = nil
				el.mu.Unlock()
			})
		}
	}
	// Records that decode but do not fit the configuration.
	semantic := []struct{ key, value, subject string }{
		{k.Override("isp9"), `{"link":"isp9","action":"drain","reason":"x"}`, k.Override("isp9")},
		{k.Override("isp1; reboot"), `{"link":"isp1; reboot","action":"drain"}`, k.Override("isp1; reboot")},
		{k.Override("isp1"), `{"link":"isp2","action":"drain"}`, k.Override("isp1")},
		{k.Override("isp2"), `{"link":"isp2","action":"rm -rf"}`, k.Override("isp2")},
		{k.Applied("fw9"), `{"node":"fw9","seq":99999,"hash":"x"}`, ""},
		{k.Node("fw9"), `{"node":"fw9","observations":{"isp1":{"link":"isp1","state":"down"}}}`, ""},
	}
	for _, s := range semantic {
		t.Run("semantic/"+strings.TrimPrefix(s.key, k.Prefix), func(t *testing.T) {
			f.t = t
			ctx := ctxT(t, 10*time.Second)
			if _, err := cli.Put(ctx, s.key, s.value); err != nil {
				t.Fatal(err)
			}
			f.flip("writing " + s.key)
			f.flip("writing " + s.key + " (again)")
			if s.subject != "" {
				for _, n := range nodes {
					waitFor(t, 5*time.Second, n.Name()+" reports "+s.subject, func() bool { return el.count(n.Name(), "subject="+s.subject+" ") >= 1 })
					if got := el.count(n.Name(), "subject="+s.subject+" "); got != 1 {
						t.Errorf("%s logged %d errors about %s, want 1", n.Name(), got, s.subject)
					}
					if !strings.Contains(strings.Join(n.Status().Problems, "\n"), s.subject) {
						t.Errorf("%s Status().Problems %q lacks %s", n.Name(), n.Status().Problems, s.subject)
					}
				}
			}
			if _, err := cli.Delete(ctx, s.key); err != nil {
				t.Fatal(err)
			}
			el.mu.Lock()
			el.lines = nil
			el.mu.Unlock()
		})
	}
}

// TestCorruptVerdictThenLeaderFailover: the verdict in etcd does not decode
// when a new leader takes over. Before, the new leader retried the read
// forever and never decided. Now it decides from no previous verdict, with
// a seq above the old ones, reports the key once, and a real link failure
// right after fails over, with audit records.
func TestCorruptVerdictThenLeaderFailover(t *testing.T) {
	e := clustertest.StartEtcd(t, 1)
	cli := e.Client(t)
	c := newCluster(t, e)
	el := &errLog{}
	c.log = el.logger()
	nodes := []*tnode{c.start("fw1", nil), c.start("fw2", nil)}
	c.waitMembers(nodes, 2)
	for _, n := range nodes {
		n.Publish(obs("isp1", up))
		n.Publish(obs("isp2", up))
	}
	var before VerdictRecord
	for _, n := range nodes {
		before = n.waitVerdict(t, 15*time.Second, "both up", both(linkIs("isp1", up), linkIs("isp2", up)))
	}
	old := c.waitOneLeader(nodes)
	rest := nodes[0]
	if rest == old {
		rest = nodes[1]
	}
	k := NewKeys(c.name)
	ctx := ctxT(t, 30*time.Second)
	if _, err := cli.Put(ctx, k.Verdict(), `{"seq": 1, "links": {"isp1": {"state": "up", "obs`); err != nil {
		t.Fatal(err)
	}
	old.stop()
	c.waitOneLeader([]*tnode{rest})
	rest.Publish(obs("isp2", down))
	v := rest.waitVerdict(t, 15*time.Second, "isp2 down from the new leader", both(linkIs("isp1", up), linkIs("isp2", down)))
	if v.Seq <= before.Seq {
		t.Errorf("verdict after the corrupt one has seq %d, not above the last good seq %d", v.Seq, before.Seq)
	}
	if v.Leader != rest.Name() {
		t.Errorf("verdict by %q, want %q", v.Leader, rest.Name())
	}
	st, _, ok, err := NewStore(cli, c.name, 0).Verdict(ctx)
	if err != nil || !ok || st.Seq != v.Seq {
		t.Errorf("verdict in etcd %+v ok=%v err=%v; want seq %d", st, ok, err, v.Seq)
	}
	if got := el.count(rest.Name(), "subject="+k.Verdict()+" "); got < 1 || got > 2 {
		// the watch and the new leader's read may each report it once
		t.Errorf("%s logged %d errors about the verdict key, want 1 or 2", rest.Name(), got)
	}
	audit, err := NewStore(cli, c.name, 0).Audit(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := audit[len(audit)-1]
	if last.Link != "isp2" || last.To != down || len(last.Evidence) == 0 {
		t.Errorf("last audit record %+v; want isp2 →down with evidence", last)
	}
}

// TestGossipFromStrangers: a member with the gossip key that the
// configuration does not name is ignored (its observations never reach a
// verdict), a member with another config hash is admitted and reported,
// and messages that do not decode are reported once however many arrive.
func TestGossipFromStrangers(t *testing.T) {
	e := clustertest.StartEtcd(t, 1)
	c := newCluster(t, e)
	el := &errLog{}
	c.log = el.logger()
	fw1 := c.start("fw1", configured("fw1", "fw2"))
	fw2 := c.start("fw2", func(cfg *config.Config) {
		configured("fw1", "fw2")(cfg)
		cfg.PF.DriftInterval = 17 * time.Second // another config hash, same policy
	})
	fw9 := c.start("fw9", func(cfg *config.Config) {
		configured("fw1", "fw2", "fw9")(cfg)
		cfg.Cluster.Name += "-stranger" // its own election: it must not lead ours
	})
	c.waitMembers([]*tnode{fw1, fw2}, 3)
	for _, n := range []*tnode{fw1, fw2} {
		n.Publish(obs("isp1", up))
		n.Publish(obs("isp2", up))
	}
	fw9.Publish(obs("isp1", down))
	fw9.Publish(obs("isp2", down))
	v := fw1.waitVerdict(t, 15*time.Second, "both up", both(linkIs("isp1", up), linkIs("isp2", up)))
	if len(v.Impaired) > 0 {
		t.Errorf("verdict has impairments %+v: the stranger's observations were counted", v.Impaired)
	}
	stranger := `subject=gossip peer "fw9" `
	waitFor(t, 10*time.Second, "fw1 reports fw9", func() bool { return el.count("fw1", stranger) >= 1 })
	waitFor(t, 10*time.Second, "fw1 reports fw2's config hash", func() bool { return el.count("fw1", `subject=gossip peer "fw2" `) >= 1 })

	// Garbage through memberlist itself, many times.
	// To fw1 as gossip's push sends: to the copy of its memberlist.Node
	// taken under memberlist's lock (memberlist rewrites its own in place).
	ml := fw2.g.memberlist()
	fw2.g.mu.Lock()
	to := fw2.g.members["fw1"].node
	fw2.g.mu.Unlock()
	for i := range 20 {
		if err := ml.SendReliable(&to, []byte(fmt.Sprintf(`{"node": 7, "gen": "x%d"`, i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "fw1 reports the undecodable message", func() bool { return el.count("fw1", "subject=gossip state message ") >= 1 })
	// More state changes and push-pulls go by; nothing is logged again.
	fw2.Publish(obs("isp2", down))
	fw1.Publish(obs("isp2", down))
	fw1.waitVerdict(t, 15*time.Second, "isp2 down", linkIs("isp2", down))
	for _, s := range []string{stranger, `subject=gossip peer "fw2" `, "subject=gossip state message "} {
		if got := el.count("fw1", s); got != 1 {
			t.Errorf("fw1 logged %d errors with %s, want 1", got, s)
		}
	}
	probs := strings.Join(fw1.Status().Problems, "\n")
	for _, want := range []string{`gossip peer "fw9"`, `gossip peer "fw2"`, "gossip state message", "seen 20 times"} {
		if !strings.Contains(probs, want) {
			t.Errorf("fw1 Status().Problems lacks %q:\n%s", want, probs)
		}
	}
}
