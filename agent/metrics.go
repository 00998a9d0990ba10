package agent

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/probe"
)

// metrics are the agent's Prometheus series (metrics.listen). Every series
// carries the labels cluster (cluster.name) and node (this node's name, as
// at start), so alerts and dashboards group by cluster and name nodes the
// way gwctl status does. A witness exports only the cluster series (leader,
// mode, members, nodes, reloads): it probes and applies nothing.
type metrics struct {
	observed    *prometheus.GaugeVec   // this node's probe view per link
	verdict     *prometheus.GaugeVec   // cluster verdict per link
	active      *prometheus.GaugeVec   // link carries balanced traffic
	loss        *prometheus.GaugeVec   // probe loss per link and target
	rtt         *prometheus.GaugeVec   // probe RTT per link and target
	transitions *prometheus.CounterVec // verdict transitions seen, per link and new state
	applyDur    prometheus.Histogram
	decideToIn  prometheus.Histogram     // leader's Decide → verdict in force here
	applyPhase  *prometheus.HistogramVec // phases of an apply that changed the rules, per phase
	applyErrors prometheus.Counter
	applyOps    prometheus.Counter
	appliedSeq  prometheus.Gauge
	drift       prometheus.Counter
	leader      prometheus.Gauge
	mode        *prometheus.GaugeVec
	members     *prometheus.GaugeVec
	demoted     prometheus.Gauge
	reloads     *prometheus.CounterVec
	ruleset     *prometheus.GaugeVec // 1 for the seq and hash in force on this node
	suppressed  *prometheus.GaugeVec // link held down by flap damping
	nodes       prometheus.Gauge     // nodes in the config (nodes:)

	ruleChanges    prometheus.Counter     // applies that changed an anchor or the route
	targetChanges  *prometheus.CounterVec // probe target state changes, per link, target and new state
	observedChange *prometheus.GaugeVec   // when this node's probe view of a link last changed
	lastDemotion   prometheus.Gauge       // when this node last demoted itself
	stateFailing   prometheus.Gauge       // the last state file write failed
}

func stateValue(s linkstate.State) float64 {
	switch s {
	case linkstate.Up:
		return 1
	case linkstate.Down:
		return 0
	}
	return -1
}

// newMetrics registers the agent's series on reg for cfg's cluster and node.
func newMetrics(reg prometheus.Registerer, cfg *config.Config) *metrics {
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"cluster": cfg.Cluster.Name, "node": cfg.Node}, reg)
	m := &metrics{
		observed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gwstated_link_observed_state",
			Help: "This node's probe view of a link: 1 up, 0 down, -1 unknown."}, []string{"link"}),
		verdict: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gwstated_link_verdict_state",
			Help: "The cluster's verdict on a link: 1 up, 0 down, -1 unknown."}, []string{"link"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gwstated_link_active",
			Help: "1 when the link carries balanced traffic (lowest up tier, or all_down policy)."}, []string{"link"}),
		loss: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gwstated_probe_loss_ratio",
			Help: "Probe loss over the window, 0..1, per link and target."}, []string{"link", "target"}),
		rtt: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gwstated_probe_rtt_seconds",
			Help: "Mean probe round-trip time over the window, per link and target."}, []string{"link", "target"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gwstated_link_transitions_total",
			Help: "Verdict transitions this node applied, per link and new state."}, []string{"link", "to"}),
		applyDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gwstated_apply_duration_seconds",
			Help:    "Time to bring pf to a verdict (render, validate, load, route, state kills).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		decideToIn: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gwstated_verdict_in_force_delay_seconds",
			Help:    "Time from the leader's decision (the verdict's time) to the verdict in force on this node: etcd commit, watch, agent loop, apply. Verdicts decided while this agent runs; the leader's clock against this node's.",
			Buckets: []float64{.005, .01, .025, .05, .1, .15, .2, .3, .5, 1, 2.5, 5}}),
		applyPhase: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gwstated_apply_phase_seconds",
			Help: "Phases of a verdict that changed the rules in force here: commit (leader's decision → verdict delivered here: etcd commit and watch; the leader's clock against this node's), " +
				"queue (verdict delivered → apply start: the agent loop), and from the apply start: table (nft table in force), conntrack (dead links' conntrack entries deleted), end (apply done).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"phase"}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "gwstated_apply_errors_total",
			Help: "Applies that failed (the previous rules stay; the apply is retried)."}),
		applyOps: prometheus.NewCounter(prometheus.CounterOpts{Name: "gwstated_apply_operations_total",
			Help: "Backend operations (pfctl/route invocations with the pfctl backend)."}),
		appliedSeq: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gwstated_applied_seq",
			Help: "Sequence of the verdict in force on this node."}),
		drift: prometheus.NewCounter(prometheus.CounterOpts{Name: "gwstated_drift_repairs_total",
			Help: "Anchors found changed behind gwstated's back and reloaded."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gwstated_leader",
			Help: "1 while this node is the cluster leader."}),
		mode: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gwstated_etcd_mode",
			Help: "1 for the node's current mode: etcd (healthy), hold or gossip (etcd unreachable)."}, []string{"mode"}),
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gwstated_gossip_members",
			Help: "Gossip members by state as this node sees them."}, []string{"state"}),
		demoted: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gwstated_carp_demoted",
			Help: "1 while this node has demoted its CARP group because it is impaired."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gwstated_config_reloads_total",
			Help: "SIGHUP reloads by result (ok, invalid)."}, []string{"result"}),
		ruleset: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gwstated_applied_ruleset_info",
			Help: "1 for the verdict seq and ruleset hash in force on this node (one series); nodes at the same seq should have the same hash."},
			[]string{"seq", "hash"}),
		suppressed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gwstated_link_suppressed",
			Help: "1 while flap damping holds the link down in the verdict in force."}, []string{"link"}),
		nodes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gwstated_cluster_nodes",
			Help: "Nodes in the config (nodes:, witnesses included): the gossip members expected alive."}),
		ruleChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "gwstated_ruleset_changes_total",
			Help: "Applies that changed the rules in force (an anchor or the default route)."}),
		targetChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gwstated_probe_target_transitions_total",
			Help: "Probe target state changes, per link, target and new state."}, []string{"link", "target", "to"}),
		observedChange: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gwstated_link_observed_change_timestamp_seconds",
			Help: "Unix time at which this node's probe view of the link last changed (0 before the first change)."}, []string{"link"}),
		lastDemotion: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gwstated_last_demotion_timestamp_seconds",
			Help: "Unix time at which this node last demoted itself (CARP or VRRP) because it was impaired; 0: never."}),
		stateFailing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gwstated_state_save_failing",
			Help: "1 while the last write of the local state file failed (state directory full or read-only); the rules are applied regardless."}),
	}
	reg.MustRegister(m.leader, m.mode, m.members, m.nodes, m.reloads)
	if !cfg.IsWitness() {
		reg.MustRegister(m.observed, m.verdict, m.active, m.loss, m.rtt, m.transitions, m.applyDur, m.decideToIn, m.applyPhase,
			m.applyErrors, m.applyOps, m.appliedSeq, m.ruleset, m.drift, m.demoted, m.suppressed,
			m.ruleChanges, m.targetChanges, m.observedChange, m.lastDemotion, m.stateFailing)
	}
	m.config(cfg)
	return m
}

// config sets the series that follow the config (at start and on reload).
func (m *metrics) config(cfg *config.Config) {
	m.nodes.Set(float64(len(cfg.Nodes)))
}

func (m *metrics) observation(o linkstate.Observation) {
	m.observed.WithLabelValues(o.Link).Set(stateValue(o.State))
	since := 0.0
	if !o.Since.IsZero() {
		since = float64(o.Since.UnixNano()) / 1e9
	}
	m.observedChange.WithLabelValues(o.Link).Set(since)
	for _, t := range o.Targets {
		m.loss.WithLabelValues(o.Link, t.Addr.String()).Set(t.Loss / 100)
		m.rtt.WithLabelValues(o.Link, t.Addr.String()).Set(t.RTT.Seconds())
	}
}

// verdictApplied records verdict v, whose rules (hash) are now in force,
// replacing prev.
func (m *metrics) verdictApplied(prev, v linkstate.Verdict, hash string) {
	for name, lv := range v.Links {
		m.verdict.WithLabelValues(name).Set(stateValue(lv.State))
		sup := 0.0
		if lv.Suppressed {
			sup = 1
		}
		m.suppressed.WithLabelValues(name).Set(sup)
		if p, ok := prev.Links[name]; ok && p.State != lv.State {
			m.transitions.WithLabelValues(name, lv.State.String()).Inc()
		}
		act := 0.0
		if v.IsActive(name) {
			act = 1
		}
		m.active.WithLabelValues(name).Set(act)
	}
	m.appliedSeq.Set(float64(v.Seq))
	m.ruleset.Reset()
	m.ruleset.WithLabelValues(strconv.FormatUint(v.Seq, 10), hash).Set(1)
}

// Phases of gwstated_apply_phase_seconds.
const (
	phaseCommit    = "commit"    // leader's decision → verdict delivered here
	phaseQueue     = "queue"     // verdict delivered → apply start
	phaseTable     = "table"     // apply start → nft table in force
	phaseConntrack = "conntrack" // apply start → conntrack entries deleted
	phaseEnd       = "end"       // apply start → apply done
)

// applyPhases records the phases of one apply that changed the rules in
// force; a phase that did not happen, or is not known, is absent.
func (m *metrics) applyPhases(phases map[string]time.Duration) {
	for p, d := range phases {
		m.applyPhase.WithLabelValues(p).Observe(d.Seconds())
	}
}

// targetChange counts a probe target's change of state (probe.WithTargetChanges).
func (m *metrics) targetChange(c probe.TargetChange) {
	m.targetChanges.WithLabelValues(c.Link, c.Target.String(), c.State.String()).Inc()
}

// stateSave records the outcome of the last state file write.
func (m *metrics) stateSave(err error) {
	v := 0.0
	if err != nil {
		v = 1
	}
	m.stateFailing.Set(v)
}

func (m *metrics) status(st cluster.Status) {
	lead := 0.0
	if st.IsLeader {
		lead = 1
	}
	m.leader.Set(lead)
	for _, mode := range []cluster.Mode{cluster.ModeEtcd, cluster.ModeHold, cluster.ModeGossip} {
		v := 0.0
		if st.Mode == mode {
			v = 1
		}
		m.mode.WithLabelValues(string(mode)).Set(v)
	}
	counts := map[cluster.MemberState]float64{cluster.MemberAlive: 0, cluster.MemberSuspect: 0, cluster.MemberDead: 0, cluster.MemberLeft: 0}
	for _, mb := range st.Members {
		counts[mb.State]++
	}
	for s, n := range counts {
		m.members.WithLabelValues(string(s)).Set(n)
	}
}
