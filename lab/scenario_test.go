package lab

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gwstated/cluster"
)

// allUp returns every ISP's name; without returns them less one.
func allUp(c *Cluster) []string {
	var up []string
	for _, s := range c.Lab.ISPs() {
		up = append(up, s.Name)
	}
	return up
}

func without(up []string, link string) []string {
	return slices.DeleteFunc(slices.Clone(up), func(s string) bool { return s == link })
}

// TestScenarioHardFailure cuts each link in turn (a hard drop in its
// gateway's namespace): both firewalls move to the rules without it and the
// audit log records why; restoring it brings the rules back.
func TestScenarioHardFailure(t *testing.T) {
	c := startCluster(t, ClusterOptions{})
	ctx := t.Context()
	up := allUp(c)
	var seq uint64
	for _, link := range up {
		cut := time.Now()
		if err := c.Lab.Cut(ctx, link); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitRules(ctx, without(up, link), 20*time.Second); err != nil {
			t.Fatalf("cut %s: %v", link, err)
		}
		// What lab-bench and the loss scenarios read: each firewall's
		// probe view changed after the cut, and its target went down.
		sel := `link="` + link + `"`
		for _, fw := range []string{FW1, FW2} {
			if at := UnixSeconds(mustMetricSum(t, c, fw, "gwstated_link_observed_change_timestamp_seconds", sel)); !at.After(cut) {
				t.Errorf("%s: probe view of %s last changed at %v, before the cut at %v", fw, link, at, cut)
			}
			if n := mustMetricSum(t, c, fw, "gwstated_probe_target_transitions_total", sel, `to="down"`); n < 1 {
				t.Errorf("%s: %v target transitions to down on %s after its cut, want at least 1", fw, n, link)
			}
		}
		tr, err := c.WaitTransition(ctx, link, "down", seq, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("cut %s: %s", link, tr.Sentence)
		seq = tr.Seq
		if err := c.Lab.Restore(ctx, link); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitRules(ctx, up, 30*time.Second); err != nil {
			t.Fatalf("restore %s: %v", link, err)
		}
		tr, err = c.WaitTransition(ctx, link, "up", seq, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("restore %s: %s", link, tr.Sentence)
		seq = tr.Seq
	}
}

// longRun says whether to run the scenarios' long windows (60 s of loss or
// flapping) rather than the CI ones: GWSTATED_LAB_LONG=1.
func longRun() bool { return os.Getenv("GWSTATED_LAB_LONG") == "1" }

// window returns the CI or the long duration.
func window(ci, long time.Duration) time.Duration {
	if longRun() {
		return long
	}
	return ci
}

// lastSeq is the newest audit sequence number.
func lastSeq(t *testing.T, c *Cluster) uint64 {
	t.Helper()
	h, err := c.History(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(h) == 0 {
		return 0
	}
	return h[len(h)-1].Seq
}

// transitionsSince returns the transitions recorded after seq.
func transitionsSince(t *testing.T, c *Cluster, seq uint64) []HistoryEntry {
	t.Helper()
	h, err := c.History(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []HistoryEntry
	for _, e := range h {
		if e.Seq > seq && e.Kind == cluster.KindTransition {
			out = append(out, e)
		}
	}
	return out
}

// mustMetricSum reads node's sum of metric name over the series matching
// match (lab.MetricSum), failing the test when /metrics cannot be read.
func mustMetricSum(t *testing.T, c *Cluster, node, name string, match ...string) float64 {
	t.Helper()
	v, err := c.MetricSum(t.Context(), node, name, match...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hashOf(t *testing.T, c *Cluster, up []string) string {
	t.Helper()
	h, err := c.ExpectedHash(t.Context(), up)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// requireRules fails unless both firewalls carry the rules for up now.
func requireRules(t *testing.T, c *Cluster, up []string) {
	t.Helper()
	want := hashOf(t, c, up)
	for _, fw := range []string{FW1, FW2} {
		a, err := c.Applied(fw)
		if err != nil {
			t.Fatal(err)
		}
		if a.Hash != want {
			t.Errorf("%s has ruleset %.12s (seq %d); want the rules for up=%v (%.12s)", fw, a.Hash, a.Seq, up, want)
		}
	}
}

// TestScenarioRandomLoss puts 10% random loss on both links (fast profile,
// the most sensitive): no transition, no rule change.
func TestScenarioRandomLoss(t *testing.T) {
	c := startCluster(t, ClusterOptions{Profile: "fast"})
	ctx := t.Context()
	seq := lastSeq(t, c)
	before, err := c.WaitConverged(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	targetDowns := func() float64 {
		return mustMetricSum(t, c, FW1, "gwstated_probe_target_transitions_total", `to="down"`) +
			mustMetricSum(t, c, FW2, "gwstated_probe_target_transitions_total", `to="down"`)
	}
	downs0 := targetDowns()
	for _, s := range allUp(c) {
		if err := c.Lab.Loss(ctx, s, 10); err != nil {
			t.Fatal(err)
		}
	}
	d := window(30*time.Second, 60*time.Second)
	// The condition is the absence of events: watch for a transition for d.
	err = Wait(ctx, d, "", func() (bool, error) {
		for _, fw := range []string{FW1, FW2} {
			if a, err := c.Applied(fw); err != nil || a.Seq != before.Seq || a.Hash != before.Hash {
				return true, err
			}
		}
		return false, nil
	})
	if err == nil {
		t.Errorf("the rules changed under 10%% loss: fw1 %+v, fw2 %+v (was %+v)", must(c.Applied(FW1)), must(c.Applied(FW2)), before)
	}
	for _, e := range transitionsSince(t, c, seq) {
		t.Errorf("transition under 10%% loss: %s", e.Sentence)
	}
	t.Logf("%s of 10%% loss on both links: no transition; %v probe targets went down", d, targetDowns()-downs0)
}

func must[T any](v T, _ error) T { return v }

// TestScenarioOneFirewallLoss drops isp1's packets to and from fw1 only:
// fw1 is impaired, logs the CARP demotion (dry-run.log), and the verdict
// stays up (decide: any) on both firewalls; when the fault goes, the
// demotion is taken back.
func TestScenarioOneFirewallLoss(t *testing.T) {
	c := startCluster(t, ClusterOptions{Profile: "fast"})
	ctx := t.Context()
	up := allUp(c)
	seq := lastSeq(t, c)
	if err := c.Lab.AddFault(ctx, "isp1", Fault{Loss: 100, Peers: c.Lab.FirewallPeers(FW1, "isp1")}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitMetric(ctx, FW1, `gwstated_link_observed_state{link="isp1"}`, 0, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	err := Wait(ctx, 20*time.Second, "fw1's carp demotion in dry-run.log", func() (bool, error) {
		lines, err := c.DryRunLog(FW1)
		return slices.ContainsFunc(lines, func(l string) bool {
			return strings.Contains(l, `"carpdemote" "50"`)
		}), err
	})
	if err != nil {
		t.Fatal(err)
	}
	requireRules(t, c, up)
	if lines, _ := c.DryRunLog(FW2); len(lines) > 0 {
		t.Errorf("fw2 is not impaired but ran %q", lines)
	}
	for _, e := range transitionsSince(t, c, seq) {
		t.Errorf("transition with one firewall impaired: %s", e.Sentence)
	}
	if err := c.Lab.Clear(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	err = Wait(ctx, 20*time.Second, "fw1's carp demotion taken back", func() (bool, error) {
		lines, err := c.DryRunLog(FW1)
		return slices.ContainsFunc(lines, func(l string) bool {
			return strings.Contains(l, `"-carpdemote" "50"`)
		}), err
	})
	if err != nil {
		t.Fatal(err)
	}
	requireRules(t, c, up)
}

// leader returns the cluster leader's node name (gwctl status --json).
func leader(t *testing.T, c *Cluster) string {
	t.Helper()
	var st struct {
		Leader *struct {
			Node string `json:"node"`
		} `json:"leader"`
	}
	var name string
	err := Wait(t.Context(), 20*time.Second, "a leader in gwctl status", func() (bool, error) {
		out, err := c.Gwctl(t.Context(), "status", "--json")
		if err != nil {
			return false, err
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return false, err
		}
		if st.Leader == nil || st.Leader.Node == "" {
			return false, nil
		}
		name = st.Leader.Node
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// TestScenarioLeaderKilled kills the leader's agent right after cutting
// isp1: the other firewall becomes leader, commits the verdict and applies
// it; the killed agent, restarted, converges on it.
func TestScenarioLeaderKilled(t *testing.T) {
	c := startCluster(t, ClusterOptions{Profile: "fast"})
	ctx := t.Context()
	up := allUp(c)
	lead := leader(t, c)
	other := FW1
	if lead == FW1 {
		other = FW2
	}
	seq := lastSeq(t, c)
	if err := c.Lab.Cut(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(lead); err != nil {
		t.Fatal(err)
	}
	tr, err := c.WaitTransition(ctx, "isp1", "down", seq, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s killed: %s", lead, tr.Sentence)
	if tr.Leader == lead {
		// The killed leader may have committed before it died; then the
		// next verdict must come from the new one.
		t.Logf("%s committed before it was killed; checking the next verdict", lead)
		if err := c.Lab.Restore(ctx, "isp1"); err != nil {
			t.Fatal(err)
		}
		if tr, err = c.WaitTransition(ctx, "isp1", "up", tr.Seq, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := c.Lab.Cut(ctx, "isp1"); err != nil {
			t.Fatal(err)
		}
		if tr, err = c.WaitTransition(ctx, "isp1", "down", tr.Seq, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if tr.Leader != other {
		t.Errorf("verdict committed by %q; want the survivor %s", tr.Leader, other)
	}
	want := hashOf(t, c, without(up, "isp1"))
	if err := Wait(ctx, 20*time.Second, other+" applies the verdict", func() (bool, error) {
		a, err := c.Applied(other)
		return a.Hash == want, err
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.StartAgent(lead); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRules(ctx, without(up, "isp1"), 30*time.Second); err != nil {
		t.Fatalf("restarted %s: %v", lead, err)
	}
	if err := c.Lab.Restore(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRules(ctx, up, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestScenarioEtcdMemberKilled kills one of the three etcd members: quorum
// is kept, so a cut is still decided, committed and applied.
func TestScenarioEtcdMemberKilled(t *testing.T) {
	c := startCluster(t, ClusterOptions{Profile: "fast"})
	ctx := t.Context()
	up := allUp(c)
	if err := c.Kill("etcd-" + Witness); err != nil {
		t.Fatal(err)
	}
	seq := lastSeq(t, c)
	if err := c.Lab.Cut(ctx, "isp2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitTransition(ctx, "isp2", "down", seq, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRules(ctx, without(up, "isp2"), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Lab.Restore(ctx, "isp2"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRules(ctx, up, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// loseQuorum kills two of the three etcd members and waits until both
// firewalls' agents have noticed (mode hold or gossip).
func loseQuorum(t *testing.T, c *Cluster, mode cluster.Mode) time.Time {
	t.Helper()
	start := time.Now()
	for _, m := range []string{"etcd-" + Witness, "etcd-" + FW2} {
		if err := c.Kill(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, fw := range []string{FW1, FW2} {
		series := fmt.Sprintf("gwstated_etcd_mode{mode=%q}", mode)
		if err := c.WaitMetric(t.Context(), fw, series, 1, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return start
}

func regainQuorum(t *testing.T, c *Cluster) {
	t.Helper()
	for _, n := range []string{Witness, FW2} {
		if err := c.StartEtcd(n); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScenarioEtcdQuorumLostHold: without etcd quorum and on_etcd_loss:
// hold, a cut link is seen down by both firewalls but the rules are held;
// once etcd is back the leader decides and both apply.
func TestScenarioEtcdQuorumLostHold(t *testing.T) {
	c := startCluster(t, ClusterOptions{Profile: "fast"})
	ctx := t.Context()
	up := allUp(c)
	loseQuorum(t, c, cluster.ModeHold)
	if err := c.Lab.Cut(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	for _, fw := range []string{FW1, FW2} {
		if err := c.WaitMetric(ctx, fw, `gwstated_link_observed_state{link="isp1"}`, 0, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// Both probes see isp1 down; with decide: any that would be a new
	// verdict. The rules must still be those with isp1.
	requireRules(t, c, up)
	regainQuorum(t, c)
	if err := c.WaitRules(ctx, without(up, "isp1"), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Lab.Restore(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRules(ctx, up, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestScenarioEtcdQuorumLostGossip: without etcd quorum and on_etcd_loss:
// gossip, both firewalls decide on gossip and fail over; once etcd is back
// the audit log holds the decision, marked as made without etcd.
func TestScenarioEtcdQuorumLostGossip(t *testing.T) {
	c := startCluster(t, ClusterOptions{Profile: "fast", OnEtcdLoss: cluster.OnEtcdLossGossip})
	ctx := t.Context()
	up := allUp(c)
	seq := lastSeq(t, c)
	loseQuorum(t, c, cluster.ModeGossip)
	if err := c.Lab.Cut(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRules(ctx, without(up, "isp1"), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	regainQuorum(t, c)
	err := Wait(ctx, 60*time.Second, "the gossip decision backfilled into gwctl history", func() (bool, error) {
		h, err := c.History(ctx)
		if err != nil {
			return false, err
		}
		for _, e := range h {
			if e.Seq > seq && e.Link == "isp1" && e.To.String() == "down" && e.WithoutEtcd {
				t.Logf("backfilled: %s", e.Sentence)
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Lab.Restore(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRules(ctx, up, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestScenarioFlapping flaps isp1 (down 2 s, up 2 s) with the default flap
// damping: the number of rule changes stays within what the damping
// parameters allow, and the link ends held down although it answers again.
func TestScenarioFlapping(t *testing.T) {
	c := startCluster(t, ClusterOptions{})
	ctx := t.Context()
	up := allUp(c)
	d := window(40*time.Second, 60*time.Second)
	dmp := c.Config.Damping
	changes0 := map[string]float64{}
	for _, fw := range []string{FW1, FW2} {
		changes0[fw] = mustMetricSum(t, c, fw, "gwstated_ruleset_changes_total")
	}
	start := time.Now()
	tk := time.NewTicker(2 * time.Second)
	defer tk.Stop()
	flaps := 0
	for down := true; time.Since(start) < d; down = !down {
		var err error
		if down {
			err = c.Lab.Cut(ctx, "isp1")
			flaps++
		} else {
			err = c.Lab.Restore(ctx, "isp1")
		}
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-tk.C: // the flap's pace, not synchronisation
		}
	}
	if err := c.Lab.Restore(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	// isp1 answers again: both firewalls' probes see it up ...
	for _, fw := range []string{FW1, FW2} {
		if err := c.WaitMetric(ctx, fw, `gwstated_link_observed_state{link="isp1"}`, 1, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// ... but the penalty keeps it down (it decays below reuse only after
	// two half-lives).
	elapsed := time.Since(start)
	requireRules(t, c, without(up, "isp1"))
	// Penalties decay, so an up can add as little as
	// penalty·2^(−elapsed/half_life); the link is suppressed once the sum
	// passes suppress, so at most ups = ⌊suppress / that⌋ + 1 ups are
	// applied, each after a down, plus the final down: 2·ups + 1 changes.
	minAdd := dmp.Penalty * math.Pow(2, -elapsed.Seconds()/dmp.HalfLife.Seconds())
	ups := int(dmp.Suppress/minAdd) + 1
	bound := 2*ups + 1
	for _, fw := range []string{FW1, FW2} {
		n := int(mustMetricSum(t, c, fw, "gwstated_ruleset_changes_total") - changes0[fw])
		t.Logf("%s: %d flaps in %s: %d rule changes (bound %d from damping %+v; undamped: %d)", fw, flaps, d.Round(time.Second), n, bound, dmp, 2*flaps)
		if n > bound {
			t.Errorf("%s: %d rule changes; damping allows at most %d", fw, n, bound)
		}
		if n == 0 {
			t.Errorf("%s: no rule change at all while isp1 flapped", fw)
		}
	}
}

// TestScenarioRestart kills fw2's agent, fails isp1 while it is away and
// starts it again: it boots from its state file and converges on the same
// ruleset hash as fw1.
func TestScenarioRestart(t *testing.T) {
	c := startCluster(t, ClusterOptions{Profile: "fast"})
	ctx := t.Context()
	up := allUp(c)
	if err := c.Kill(FW2); err != nil {
		t.Fatal(err)
	}
	if err := c.Lab.Cut(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	want := hashOf(t, c, without(up, "isp1"))
	if err := Wait(ctx, 20*time.Second, "fw1 applies the cut", func() (bool, error) {
		a, err := c.Applied(FW1)
		return a.Hash == want, err
	}); err != nil {
		t.Fatal(err)
	}
	if a, _ := c.Applied(FW2); a.Hash == want {
		t.Fatal("fw2 applied the cut while its agent was down")
	}
	if err := c.StartAgent(FW2); err != nil {
		t.Fatal(err)
	}
	got, err := c.WaitConverged(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != want {
		t.Errorf("converged on %.12s; want the rules without isp1 (%.12s)", got.Hash, want)
	}
}

// TestScenarioEmbeddedEtcd runs the cluster on embedded etcd members (one
// in each agent): a cut is decided and applied; with the witness's agent
// (and so its member) killed, quorum is kept and the recovery is too.
func TestScenarioEmbeddedEtcd(t *testing.T) {
	c := startCluster(t, ClusterOptions{Profile: "fast", Etcd: EtcdEmbedded})
	ctx := t.Context()
	up := allUp(c)
	if err := c.Lab.Cut(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRules(ctx, without(up, "isp1"), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(Witness); err != nil {
		t.Fatal(err)
	}
	if err := c.Lab.Restore(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRules(ctx, up, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitTransition(ctx, "isp1", "up", 0, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestScenarioDrain drains a healthy link with gwctl against the running
// agents: gwctl returns once both firewalls applied it, the rules drop the
// link on both, history says who and why; undrain brings it back.
func TestScenarioDrain(t *testing.T) {
	c := startCluster(t, ClusterOptions{Profile: "fast"})
	ctx := t.Context()
	up := allUp(c)
	out, err := c.Gwctl(ctx, "drain", "isp2", "--reason", "ISP maintenance, ticket 4711", "--for", "10m", "--wait", "20s")
	if err != nil {
		t.Fatalf("gwctl drain: %v\n%s", err, out)
	}
	// drain waits for every alive node to apply: the rules are there now.
	requireRules(t, c, without(up, "isp2"))
	hist, err := c.Gwctl(ctx, "history", "--link", "isp2", "--limit", "5")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hist, "ISP maintenance, ticket 4711") || !strings.Contains(hist, "drained by") {
		t.Errorf("history does not record the drain with its reason:\n%s", hist)
	}
	// Whatever its exit status, status lists the override with its reason.
	status, _ := c.Gwctl(ctx, "status")
	if !strings.Contains(status, "ISP maintenance") {
		t.Errorf("status does not show the override:\n%s", status)
	}
	out, err = c.Gwctl(ctx, "undrain", "isp2", "--wait", "20s")
	if err != nil {
		t.Fatalf("gwctl undrain: %v\n%s", err, out)
	}
	requireRules(t, c, up)
}
