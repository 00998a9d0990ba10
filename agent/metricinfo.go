package agent

import (
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/probe"
)

// MetricInfo describes one metric family the agent exports.
type MetricInfo struct {
	Name    string
	Type    string // counter, gauge, histogram
	Help    string
	Labels  []string // sorted, the constant labels cluster and node included
	Witness bool     // a witness exports it too
}

// Metrics lists every metric family a firewall node exports on
// metrics.listen, sorted by name, for the checks that keep the man page,
// README, alert rules and dashboard in step with the agent.
func Metrics() []MetricInfo {
	fw := gatherSample(false)
	wit := gatherSample(true)
	out := make([]MetricInfo, 0, len(fw))
	for _, mf := range fw {
		mi := MetricInfo{Name: mf.GetName(), Help: mf.GetHelp(), Type: typeName(mf.GetType())}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			mi.Labels = append(mi.Labels, l.GetName())
		}
		slices.Sort(mi.Labels)
		mi.Witness = slices.ContainsFunc(wit, func(w *dto.MetricFamily) bool { return w.GetName() == mi.Name })
		out = append(out, mi)
	}
	return out
}

func typeName(t dto.MetricType) string {
	switch t {
	case dto.MetricType_COUNTER:
		return "counter"
	case dto.MetricType_GAUGE:
		return "gauge"
	case dto.MetricType_HISTOGRAM:
		return "histogram"
	}
	return t.String()
}

// gatherSample registers the metrics on a new registry and gives every
// labelled family one series, through the same methods the agent calls,
// so that Gather returns every family.
func gatherSample(witness bool) []*dto.MetricFamily {
	cfg := &config.Config{Node: "fw1", Witness: witness, Nodes: map[string]config.NodeSpec{"fw1": {}}}
	cfg.Cluster.Name = "sample"
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, cfg)
	now := time.Unix(0, 0)
	up := linkstate.LinkVerdict{State: linkstate.Up}
	v := linkstate.Verdict{Seq: 1, Links: map[string]linkstate.LinkVerdict{"isp1": up}, Active: []string{"isp1"}}
	m.observation(linkstate.Observation{Link: "isp1", State: linkstate.Up, Since: now,
		Targets: []linkstate.TargetObs{{Addr: netip.MustParseAddr("192.0.2.1")}}})
	m.verdictApplied(linkstate.Verdict{Links: map[string]linkstate.LinkVerdict{"isp1": {State: linkstate.Down}}}, v, "hash")
	m.status(cluster.Status{Mode: cluster.ModeEtcd})
	m.reloads.WithLabelValues("ok")
	m.applyPhases(map[string]time.Duration{phaseEnd: time.Millisecond})
	m.targetChange(probe.TargetChange{Link: "isp1", Target: netip.MustParseAddr("192.0.2.1"), State: linkstate.Down})
	mfs, err := reg.Gather()
	if err != nil {
		panic("agent metrics: " + err.Error()) // a programming error: the tests catch it
	}
	return mfs
}
