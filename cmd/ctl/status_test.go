package main

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/cluster"
	"gwstated/cluster/clustertest"
	"gwstated/linkstate"
)

// t0 is the fixed "now" of the status and history tests.
var t0 = time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)

// fixture writes cluster records the way the agents do (cluster.Store),
// at fixed times relative to t0.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	etcd  *clustertest.Etcd
	cli   *clientv3.Client
	store *cluster.Store
	name  string
	lease clientv3.LeaseID
	fence cluster.Fence
}

func newFixture(t *testing.T, name string) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	e := clustertest.StartEtcd(t, 1)
	cli := e.Client(t)
	f := &fixture{t: t, ctx: ctx, etcd: e, cli: cli, store: cluster.NewStore(cli, name, 0), name: name}
	l, err := cli.Grant(ctx, 600)
	if err != nil {
		t.Fatalf("grant lease: %v", err)
	}
	f.lease = l.ID
	return f
}

// args are the connection flags for this fixture's cluster.
func (f *fixture) args(extra ...string) []string {
	return append(extra, "--endpoints", f.etcd.Endpoint(0), "--cluster", f.name, "--timeout", "5s")
}

// normalise replaces the random loopback endpoint in output.
func (f *fixture) normalise(s string) string {
	return strings.ReplaceAll(s, f.etcd.Endpoint(0), "ENDPOINT")
}

// elect makes node the agent leader, as concurrency.Election would: a key
// under election/ on a lease, valued with the node name.
func (f *fixture) elect(node string) {
	f.t.Helper()
	key := f.store.Keys.Election() + "694d9a1b2c3d4e5f"
	r, err := f.cli.Put(f.ctx, key, node, clientv3.WithLease(f.lease))
	if err != nil {
		f.t.Fatalf("elect: %v", err)
	}
	f.fence = cluster.Fence{Key: key, Rev: r.Header.Revision}
}

func (f *fixture) commit(v cluster.VerdictRecord) {
	f.t.Helper()
	if _, err := f.store.CommitVerdict(f.ctx, f.fence, v, nil); err != nil {
		f.t.Fatalf("commit verdict: %v", err)
	}
}

func (f *fixture) node(r cluster.NodeRecord) {
	f.t.Helper()
	if err := f.store.PutNode(f.ctx, r, f.lease); err != nil {
		f.t.Fatalf("put node: %v", err)
	}
}

func (f *fixture) applied(a cluster.AppliedRecord) {
	f.t.Helper()
	if err := f.store.PutApplied(f.ctx, a); err != nil {
		f.t.Fatalf("put applied: %v", err)
	}
}

func (f *fixture) put(key string, v any) {
	f.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.cli.Put(f.ctx, key, string(b)); err != nil {
		f.t.Fatalf("put %s: %v", key, err)
	}
}

const (
	hashA   = "3f2a9c1d0b12e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b"
	hashB   = "77bc01d2e3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4"
	cfgHash = "9ab1c2d3e4f5061728394a5b6c7d8e9f"
	cfgNew  = "0cd4e5f60718293a4b5c6d7e8f901a2b"
)

var (
	gw1 = netip.MustParseAddr("198.51.100.100")
	gw2 = netip.MustParseAddr("203.0.113.200")
)

func obs(link string, st linkstate.State, loss float64, rtt time.Duration, target netip.Addr, lastOK time.Time) linkstate.Observation {
	return linkstate.Observation{
		Link: link, State: st, Loss: loss, RTT: rtt, Since: t0.Add(-3 * time.Hour), LastOK: lastOK,
		Targets: []linkstate.TargetObs{{Addr: target, State: st, Loss: loss, RTT: rtt}},
	}
}

func members(states ...string) []cluster.Member {
	var m []cluster.Member
	for i := 0; i+1 < len(states); i += 2 {
		m = append(m, cluster.Member{Name: states[i], Addr: "10.0.0." + states[i][2:] + ":7946", State: cluster.MemberState(states[i+1])})
	}
	return m
}

func carp(state string) []cluster.CARPStatus {
	return []cluster.CARPStatus{{Interface: "carp0", State: state}}
}

// seedHealthy writes a two-node cluster where everything agrees.
func seedHealthy(f *fixture) {
	f.elect("fw1")
	up := linkstate.LinkVerdict{State: linkstate.Up, Observed: linkstate.Up, Since: t0.Add(-3 * time.Hour), Reason: "fw1, fw2 see it up"}
	f.commit(cluster.VerdictRecord{
		Verdict: linkstate.Verdict{Seq: 42, Time: t0.Add(-3 * time.Hour),
			Links: map[string]linkstate.LinkVerdict{"isp1": up, "isp2": up}, Active: []string{"isp1", "isp2"}},
		Leader: "fw1", ConfigHash: cfgHash,
	})
	for _, n := range []string{"fw1", "fw2"} {
		role := "BACKUP"
		if n == "fw1" {
			role = "MASTER"
		}
		f.node(cluster.NodeRecord{
			Node: n, Time: t0.Add(-2 * time.Second), Version: "0.1.0",
			Observations: map[string]linkstate.Observation{
				"isp1": obs("isp1", linkstate.Up, 0, 12300*time.Microsecond, gw1, t0.Add(-400*time.Millisecond)),
				"isp2": obs("isp2", linkstate.Up, 5, 31*time.Millisecond, gw2, t0.Add(-700*time.Millisecond)),
			},
			Members: members("fw1", "alive", "fw2", "alive"), CARP: carp(role), ConfigHash: cfgHash,
			AppliedSeq: 42, AppliedHash: hashA, Mode: cluster.ModeEtcd,
			Leader: n == "fw1", LeaderSince: map[bool]time.Time{true: t0.Add(-26 * time.Hour)}[n == "fw1"],
		})
		f.applied(cluster.AppliedRecord{Node: n, Seq: 42, Hash: hashA, Time: t0.Add(-3 * time.Hour), Backend: "pfctl"})
	}
}

// seedDegraded writes a three-node cluster with every kind of disagreement:
// fw3 is dead (no nodes/ record, fw1 reports it dead); fw1 and fw2 applied
// seq 42 with different hashes; fw2 has an apply error, runs another config,
// is in hold mode and impaired on isp1; isp2 is drained until 07:00 and
// fw1 is behind on a newer verdict... (seq 43 committed after fw1 applied 42).
func seedDegraded(f *fixture) {
	f.elect("fw1")
	f.commit(cluster.VerdictRecord{
		Verdict: linkstate.Verdict{Seq: 43, Time: t0.Add(-10 * time.Minute),
			Links: map[string]linkstate.LinkVerdict{
				"isp1": {State: linkstate.Up, Observed: linkstate.Up, Since: t0.Add(-3 * time.Hour), Reason: "fw1 sees it up"},
				"isp2": {State: linkstate.Down, Observed: linkstate.Up, Since: t0.Add(-10 * time.Minute), Reason: "drained by alice@adm1", Override: linkstate.Drain},
				"lte":  {State: linkstate.Down, Observed: linkstate.Down, Since: t0.Add(-90 * time.Minute), Reason: "no alive node sees it up"},
			},
			Active:   []string{"isp1"},
			Impaired: []linkstate.Impairment{{Node: "fw2", Link: "isp1"}},
		},
		Leader: "fw1", ConfigHash: cfgHash,
	})
	f.node(cluster.NodeRecord{
		Node: "fw1", Time: t0.Add(-1 * time.Second), Version: "0.1.0",
		Observations: map[string]linkstate.Observation{
			"isp1": obs("isp1", linkstate.Up, 0, 12300*time.Microsecond, gw1, t0.Add(-400*time.Millisecond)),
			"isp2": obs("isp2", linkstate.Up, 0, 30*time.Millisecond, gw2, t0.Add(-300*time.Millisecond)),
			"lte":  obs("lte", linkstate.Down, 100, 0, netip.MustParseAddr("192.0.2.1"), t0.Add(-91*time.Minute)),
		},
		Members: members("fw1", "alive", "fw2", "alive", "fw3", "dead"), CARP: carp("MASTER"), ConfigHash: cfgHash,
		AppliedSeq: 42, AppliedHash: hashA, Mode: cluster.ModeEtcd, Leader: true, LeaderSince: t0.Add(-26 * time.Hour),
	})
	f.node(cluster.NodeRecord{
		Node: "fw2", Time: t0.Add(-45 * time.Second), Version: "0.1.0",
		Observations: map[string]linkstate.Observation{
			"isp1": obs("isp1", linkstate.Down, 100, 0, gw1, t0.Add(-11*time.Minute)),
			"isp2": obs("isp2", linkstate.Up, 0, 28*time.Millisecond, gw2, t0.Add(-45*time.Second)),
		},
		Members: members("fw1", "alive", "fw2", "alive", "fw3", "suspect"), CARP: carp("BACKUP"), ConfigHash: cfgNew,
		AppliedSeq: 42, AppliedHash: hashB, Mode: cluster.ModeHold,
	})
	f.applied(cluster.AppliedRecord{Node: "fw1", Seq: 42, Hash: hashA, Time: t0.Add(-3 * time.Hour), Backend: "pfctl"})
	f.applied(cluster.AppliedRecord{Node: "fw2", Seq: 42, Hash: hashB, Time: t0.Add(-3 * time.Hour), Backend: "pfctl",
		Error: "pfctl -a gwstated/nat-isp2 -f -: exit status 1: no such interface fxp1"})
	f.applied(cluster.AppliedRecord{Node: "fw3", Seq: 40, Hash: hashA, Time: t0.Add(-5 * time.Hour), Backend: "pfctl"})
	f.put(f.store.Keys.Override("isp2"), linkstate.Override{Link: "isp2", Action: linkstate.Drain,
		Reason: "ISP maintenance window", By: "alice@adm1", Since: t0.Add(-10 * time.Minute), Until: t0.Add(2 * time.Hour)})
	f.put(f.store.Keys.Override("lte"), linkstate.Override{Link: "lte", Action: linkstate.ForceUp,
		Reason: "test", By: "bob@adm1", Since: t0.Add(-5 * time.Hour), Until: t0.Add(-1 * time.Hour)})
}

func TestStatusHealthy(t *testing.T) {
	f := newFixture(t, "office")
	seedHealthy(f)
	clock := fixedClock(t0)

	r := runCtl(f.ctx, clock, f.args("status")...)
	if r.code != exitOK {
		t.Errorf("exit status %d, want %d (healthy); stderr: %s", r.code, exitOK, r.err)
	}
	checkGolden(t, "status-healthy.golden", f.normalise(r.out))

	r = runCtl(f.ctx, clock, f.args("status", "--json")...)
	if r.code != exitOK {
		t.Errorf("--json exit status %d, want %d; stderr: %s", r.code, exitOK, r.err)
	}
	checkGolden(t, "status-healthy.json.golden", f.normalise(r.out))
	var s Status
	if err := json.Unmarshal([]byte(r.out), &s); err != nil {
		t.Fatalf("--json output is not a Status: %v", err)
	}
	if s.Health != healthHealthy || len(s.Warnings) != 0 {
		t.Errorf("health %q warnings %q, want healthy and none", s.Health, s.Warnings)
	}
}

func TestStatusDegraded(t *testing.T) {
	f := newFixture(t, "office")
	seedDegraded(f)
	clock := fixedClock(t0)

	r := runCtl(f.ctx, clock, f.args("status")...)
	if r.code != exitFail {
		t.Errorf("exit status %d, want %d (degraded); stderr: %s", r.code, exitFail, r.err)
	}
	checkGolden(t, "status-degraded.golden", f.normalise(r.out))
	for _, want := range []string{
		"warning: ruleset hash mismatch at verdict seq 42: fw1 3f2a9c1d0b12, fw2 77bc01d2e3f4",
		"warning: node fw3 has no nodes/ record",
		"warning: node fw2 failed to apply verdict seq 42: pfctl",
		"warning: node fw1 is behind: it applied verdict seq 42, the verdict is at seq 43",
		"warning: config hash differs between nodes",
		"warning: node fw2 is impaired on isp1",
		"warning: node fw2 is in hold mode",
		"warning: override on lte expired",
		"warning: link lte is down",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("no line %q in:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "link isp2 is down") {
		t.Errorf("a drained link is reported as a warning:\n%s", r.out)
	}

	r = runCtl(f.ctx, clock, f.args("status", "--json")...)
	if r.code != exitFail {
		t.Errorf("--json exit status %d, want %d", r.code, exitFail)
	}
	checkGolden(t, "status-degraded.json.golden", f.normalise(r.out))
}

// closedPort returns a loopback URL on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestStatusUnreachable(t *testing.T) {
	ep := closedPort(t)
	ctx := context.Background()
	clock := fixedClock(t0)
	args := []string{"status", "--endpoints", ep, "--cluster", "office", "--timeout", "300ms"}

	r := runCtl(ctx, clock, args...)
	if r.code != exitUsage {
		t.Errorf("exit status %d, want %d (unreachable)", r.code, exitUsage)
	}
	if r.out != "" {
		t.Errorf("text output on stdout when unreachable: %q", r.out)
	}
	norm := strings.ReplaceAll(r.err, ep, "ENDPOINT")
	checkGolden(t, "status-unreachable.golden", norm)
	if !strings.Contains(r.err, ep) || !strings.Contains(r.err, "300ms") {
		t.Errorf("error does not name the endpoint %s and the timeout 300ms: %q", ep, r.err)
	}

	r = runCtl(ctx, clock, append(args, "--json")...)
	if r.code != exitUsage {
		t.Errorf("--json exit status %d, want %d", r.code, exitUsage)
	}
	checkGolden(t, "status-unreachable.json.golden", strings.ReplaceAll(r.out, ep, "ENDPOINT"))
}

func TestStatusUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"status", "extra"},
		{"status", "--endpoints", "http://127.0.0.1:1"},                        // no cluster name
		{"status", "--cluster", "office"},                                      // no endpoint
		{"status", "--cluster", "Office", "--endpoints", "http://127.0.0.1:1"}, // bad name
		{"status", "--timeout", "0s", "--cluster", "office", "--endpoints", "http://127.0.0.1:1"},
	} {
		r := runCtl(ctx, fixedClock(t0), args...)
		if r.code != exitUsage || r.err == "" {
			t.Errorf("%q: exit status %d stderr %q, want %d and a message", args, r.code, r.err, exitUsage)
		}
	}
}

func TestStatusWatch(t *testing.T) {
	f := newFixture(t, "office")
	seedHealthy(f)
	ctx, cancel := context.WithCancel(f.ctx)
	out := newNotifyBuffer()
	done := make(chan int)
	go func() {
		done <- run(ctx, f.args("status", "--watch"), &stdio{out: out, err: out, clock: fixedClock(t0)})
	}()
	out.waitFor(t, "seq 42 at", 20*time.Second)
	if strings.Contains(out.String(), "\x1b[") {
		t.Errorf("escape sequences written to a non-terminal:\n%q", out.String())
	}
	// fw2 falls behind: the next draw shows it.
	f.applied(cluster.AppliedRecord{Node: "fw2", Seq: 41, Hash: hashB, Time: t0, Backend: "pfctl"})
	out.waitFor(t, "warning: node fw2 is behind", 20*time.Second)
	cancel()
	if code := <-done; code != exitFail {
		t.Errorf("watch returned %d after the last draw was degraded, want %d", code, exitFail)
	}
}

// TestComputeStatusGossip checks the gossip state rules without etcd.
func TestComputeStatusGossip(t *testing.T) {
	in := statusInput{
		Cluster: "office",
		Snapshot: cluster.Snapshot{
			Nodes: map[string]cluster.NodeRecord{
				"fw1": {Node: "fw1", Members: members("fw1", "alive", "fw2", "suspect", "fw4", "left")},
				"fw2": {Node: "fw2", Members: members("fw1", "alive", "fw2", "alive")},
			},
			Applied:   map[string]cluster.AppliedRecord{},
			Overrides: map[string]linkstate.Override{},
		},
		ConfigNodes: map[string]bool{"fw5": true},
	}
	s := computeStatus(in, t0)
	got := map[string]string{}
	for _, n := range s.Nodes {
		got[n.Name] = n.Gossip
	}
	want := map[string]string{"fw1": "alive", "fw2": "suspect", "fw4": "left", "fw5": "gone"}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("node %s gossip %q, want %q (all: %v)", n, got[n], w, got)
		}
	}
	if s.Health != healthDegraded {
		t.Errorf("health %q, want degraded", s.Health)
	}
}

// TestStatusConfig connects with --config alone: the cluster name and the
// endpoints come from the file, links are shown in the file's order, and
// drain checks links against it.
func TestStatusConfig(t *testing.T) {
	f := newFixture(t, "office")
	seedHealthy(f)
	path := filepath.Join(t.TempDir(), "gwstated.yaml")
	cfg := `cluster:
  name: office
  gossip: {key_file: /etc/gwstated/gossip.key}
  etcd: {endpoints: [` + f.etcd.Endpoint(0) + `]}
lan: {interface: dc0, network: 192.168.0.0/24}
links:
  - {name: isp2, interface: fxp1, gateway: 203.0.113.200}
  - {name: isp1, interface: fxp0, gateway: 198.51.100.100}
nodes:
  fw1: {}
  fw2: {}
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCtl(f.ctx, fixedClock(t0), "status", "--config", path, "--json")
	var st Status
	if err := json.Unmarshal([]byte(r.out), &st); err != nil {
		t.Fatalf("status --config: exit %d, %v; stderr %s", r.code, err, r.err)
	}
	if r.code != exitOK || st.Cluster != "office" || len(st.Links) != 2 || st.Links[0].Name != "isp2" || st.Links[1].Name != "isp1" {
		t.Errorf("status --config: exit %d cluster %q links %+v, want 0, office, [isp2 isp1]", r.code, st.Cluster, st.Links)
	}
	r = runCtl(f.ctx, fixedClock(t0), "drain", "isp9", "--reason", "x", "--config", path)
	if r.code != exitUsage || !strings.Contains(r.err, `unknown link "isp9" (links: isp2, isp1)`) {
		t.Errorf("drain of a link not in the config: exit %d stderr %q", r.code, r.err)
	}
	r = runCtl(f.ctx, fixedClock(t0), "status", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if r.code != exitUsage || !strings.Contains(r.err, "missing.yaml") {
		t.Errorf("status with a missing config: exit %d stderr %q, want %d naming the file", r.code, r.err, exitUsage)
	}
}
