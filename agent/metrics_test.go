package agent

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"gwstated/config"
	"gwstated/linkstate"
)

func metricsConfig(witness bool) *config.Config {
	cfg := &config.Config{Node: "fw2", Witness: witness,
		Nodes: map[string]config.NodeSpec{"fw1": {}, "fw2": {}, "witness": {Witness: true}}}
	cfg.Cluster.Name = "office"
	return cfg
}

// countingRegisterer counts the collectors newMetrics registers.
type countingRegisterer struct {
	prometheus.Registerer
	n int
}

func (c *countingRegisterer) Register(col prometheus.Collector) error {
	c.n++
	return c.Registerer.Register(col)
}

func (c *countingRegisterer) MustRegister(cols ...prometheus.Collector) {
	for _, col := range cols {
		if err := c.Register(col); err != nil {
			panic(err)
		}
	}
}

// Metrics must list every family newMetrics registers, or the checks of
// the man page, alerts and dashboard built on it miss one.
func TestMetricsListsEveryFamily(t *testing.T) {
	for _, witness := range []bool{false, true} {
		c := &countingRegisterer{Registerer: prometheus.NewRegistry()}
		newMetrics(c, metricsConfig(witness))
		if got := len(gatherSample(witness)); got != c.n {
			t.Errorf("witness=%v: gatherSample returns %d families, newMetrics registers %d: give the new one a series in gatherSample", witness, got, c.n)
		}
	}
	all := Metrics()
	if len(all) < 19 {
		t.Fatalf("Metrics() lists %d families, want at least 19", len(all))
	}
	for _, mi := range all {
		if !strings.HasPrefix(mi.Name, "gwstated_") || mi.Help == "" {
			t.Errorf("%+v: want a gwstated_ name and a help text", mi)
		}
		if !slices.Contains(mi.Labels, "cluster") || !slices.Contains(mi.Labels, "node") {
			t.Errorf("%s labels %v: want cluster and node on every series", mi.Name, mi.Labels)
		}
	}
}

// A witness applies nothing: it exports the cluster series only.
func TestMetricsWitness(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, metricsConfig(true))
	m.reloads.WithLabelValues("ok")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := []string{"gwstated_cluster_nodes", "gwstated_config_reloads_total", "gwstated_leader"}
	if !slices.Equal(names, want) {
		t.Errorf("witness exports %v before its first status, want %v", names, want)
	}
}

func TestMetricsAppliedRuleset(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, metricsConfig(false))
	up := map[string]linkstate.LinkVerdict{"isp1": {State: linkstate.Up}}
	v1 := linkstate.Verdict{Seq: 41, Links: up}
	v2 := linkstate.Verdict{Seq: 42, Links: up}
	m.verdictApplied(linkstate.Verdict{}, v1, "aaaa")
	m.verdictApplied(v1, v2, "bbbb")
	// Only the rules in force: one series, the older seq and hash gone.
	want := `
# HELP gwstated_applied_ruleset_info 1 for the verdict seq and ruleset hash in force on this node (one series); nodes at the same seq should have the same hash.
# TYPE gwstated_applied_ruleset_info gauge
gwstated_applied_ruleset_info{cluster="office",hash="bbbb",node="fw2",seq="42"} 1
# HELP gwstated_applied_seq Sequence of the verdict in force on this node.
# TYPE gwstated_applied_seq gauge
gwstated_applied_seq{cluster="office",node="fw2"} 42
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gwstated_applied_ruleset_info", "gwstated_applied_seq"); err != nil {
		t.Error(err)
	}
}

func TestMetricsSuppressed(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, metricsConfig(false))
	held := linkstate.Verdict{Seq: 7, Links: map[string]linkstate.LinkVerdict{
		"isp1": {State: linkstate.Down, Suppressed: true}, "isp2": {State: linkstate.Up}}}
	m.verdictApplied(linkstate.Verdict{}, held, "h7")
	if got := testutil.ToFloat64(m.suppressed.WithLabelValues("isp1")); got != 1 {
		t.Errorf("isp1 held down by damping: gwstated_link_suppressed = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.suppressed.WithLabelValues("isp2")); got != 0 {
		t.Errorf("isp2 up: gwstated_link_suppressed = %v, want 0", got)
	}
	released := linkstate.Verdict{Seq: 8, Links: map[string]linkstate.LinkVerdict{
		"isp1": {State: linkstate.Up}, "isp2": {State: linkstate.Up}}}
	m.verdictApplied(held, released, "h8")
	if got := testutil.ToFloat64(m.suppressed.WithLabelValues("isp1")); got != 0 {
		t.Errorf("isp1 released: gwstated_link_suppressed = %v, want 0", got)
	}
}

func TestMetricsClusterNodes(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := metricsConfig(false)
	m := newMetrics(reg, cfg)
	if got := testutil.ToFloat64(m.nodes); got != 3 {
		t.Errorf("gwstated_cluster_nodes = %v, want 3 (fw1, fw2, witness)", got)
	}
	delete(cfg.Nodes, "witness")
	m.config(cfg) // a reload
	if got := testutil.ToFloat64(m.nodes); got != 2 {
		t.Errorf("after a reload with 2 nodes: gwstated_cluster_nodes = %v, want 2", got)
	}
}
