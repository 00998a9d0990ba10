package lab

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gwstated/cluster"
	"gwstated/linkstate"
)

// TestScenarioColdStart starts both firewalls together with nothing
// applied before (a power cut took both down): every anchor is loaded
// once, by the fail-open first verdict, and never again while the links
// settle; the audit log holds one unknown→up record per link and nothing
// else. Then a restart of fw2's agent, with fw1 running and nothing changed
// outside, changes no rule at all.
func TestScenarioColdStart(t *testing.T) {
	// isp2 needs 50 answers in a row (5 s) to come up, isp1 the profile's 5:
	// the cluster decides while isp1 is up and isp2 still unknown.
	c := startCluster(t, ClusterOptions{Rise: map[string]int{"isp2": 50}})
	ctx := t.Context()
	up := allUp(c)
	for _, link := range up {
		if _, err := c.WaitTransition(ctx, link, "up", 0, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.WaitConverged(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	h, err := c.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range h {
		t.Logf("audit %d: %s", e.Seq, e.Sentence)
		if e.Kind != cluster.KindTransition {
			continue
		}
		seen[e.Link]++
		if e.From != linkstate.Unknown || e.To != linkstate.Up {
			t.Errorf("audit %d: %s %v→%v at a cold start; want only unknown→up", e.Seq, e.Link, e.From, e.To)
		}
	}
	times := map[string]time.Time{}
	for _, e := range h {
		if e.Kind == cluster.KindTransition {
			times[e.Link] = e.Time
		}
	}
	if !times["isp1"].Before(times["isp2"]) {
		t.Errorf("isp1 settled at %v, isp2 at %v: the cluster never decided while isp2 was unknown, so this run proves nothing", times["isp1"], times["isp2"])
	}
	for _, link := range up {
		if seen[link] != 1 {
			t.Errorf("%s: %d transitions, want exactly 1 (unknown→up)", link, seen[link])
		}
	}
	// One load per anchor: each firewall's first apply validated and loaded
	// every anchor once and set the default route; anything loaded again
	// while the links settled would count more operations.
	for _, fw := range []string{FW1, FW2} {
		n := len(anchorInodes(t, c, fw))
		ops, err := applyOps(ctx, c, fw)
		if err != nil {
			t.Fatal(err)
		}
		if want := float64(2*n + 1); ops != want {
			t.Errorf("%s: %v apply operations since start, want %v (validate + load of each of %d anchors, one route change)", fw, ops, want, n)
		}
	}

	// Restart fw2's agent with fw1 running.
	before, err := c.Applied(FW2)
	if err != nil {
		t.Fatal(err)
	}
	anchors := anchorInodes(t, c, FW2)
	lastAudit := h[len(h)-1].Seq
	if err := c.Stop(FW2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	if err := c.StartAgent(FW2); err != nil {
		t.Fatal(err)
	}
	// Its first apply after the restart is reported in applied/fw2.
	err = waitEvery(ctx, gwctlPollEvery, 20*time.Second, "fw2's applied record after its restart", func() (bool, error) {
		rec, err := nodeApplied(ctx, c, FW2)
		if err != nil || rec == nil {
			return false, err
		}
		return rec.Time.After(restarted) && rec.Error == "", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := c.Applied(FW2)
	if err != nil {
		t.Fatal(err)
	}
	if after.Hash != before.Hash || !after.AppliedAt.Equal(before.AppliedAt) {
		t.Errorf("fw2 after restart: hash %.12s applied_at %v, before %.12s %v", after.Hash, after.AppliedAt, before.Hash, before.AppliedAt)
	}
	if ops, err := applyOps(ctx, c, FW2); err != nil || ops > 1 {
		t.Errorf("fw2 after restart: %v apply operations (%v), want at most the default route's", ops, err)
	}
	for name, ino := range anchorInodes(t, c, FW2) {
		if anchors[name] != ino {
			t.Errorf("fw2: anchor %s was rewritten by the restarted agent", name)
		}
	}
	h, err = c.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h {
		if e.Seq > lastAudit {
			t.Errorf("new audit record after fw2's restart: %s", e.Sentence)
		}
	}
}

// anchorInodes maps each anchor file of node's dir backend to its inode: the
// backend replaces a file by rename, so a load changes it.
func anchorInodes(t *testing.T, c *Cluster, node string) map[string]uint64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(c.NodeDir(node), "anchors", "*.conf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no anchor files (%v)", node, err)
	}
	out := map[string]uint64{}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = fi.Sys().(*syscall.Stat_t).Ino
	}
	return out
}

// nodeApplied is node's applied/<node> record as gwctl status --json shows it.
// (gwctl status exits 1 while it warns, e.g. of a node restarting; its
// JSON is still complete.)
func nodeApplied(ctx context.Context, c *Cluster, node string) (*cluster.AppliedRecord, error) {
	out, err := c.Gwctl(ctx, "status", "--json")
	if err != nil && out == "" {
		return nil, err
	}
	var st struct {
		Nodes []struct {
			Name    string                 `json:"name"`
			Applied *cluster.AppliedRecord `json:"applied"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return nil, err
	}
	for _, n := range st.Nodes {
		if n.Name == node {
			return n.Applied, nil
		}
	}
	return nil, nil
}

// applyOps is node's gwstated_apply_operations_total.
func applyOps(ctx context.Context, c *Cluster, node string) (float64, error) {
	return c.MetricSum(ctx, node, "gwstated_apply_operations_total")
}
