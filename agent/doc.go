// Package agent is gwstated's run loop: it owns every goroutine of a
// running node and wires the rooms together in one direction —
//
//	config → state file (applied at once) → embedded etcd member →
//	probe.Prober → cluster.Node (gossip, election, verdicts) →
//	Dataplane.Apply → applied/<node>, state.json
//
// It applies the last verdict it knows before the probes settle (never
// "all down" at boot), retries a failed apply with backoff while the
// previous rules stay in force, demotes this node's CARP group while it is
// impaired, repairs drifted anchors, reloads the config on SIGHUP (an
// invalid one is refused) and, when its context ends, resigns, leaves
// gossip and leaves pf as it is. It serves the Prometheus metrics and, on
// OpenBSD, restricts itself with unveil(2) (and pledge(2) for a witness).
//
// Files: agent.go (Options, Run, start-up), loop.go (the event loop and
// the generation of node and prober), apply.go (apply, report, demote,
// drift repair, roles), reload.go (SIGHUP), dataplane.go (the Dataplane
// and Redundancy interfaces and newDataplane, the one place a data plane
// is chosen), dataplane_pf.go (pf: pfapply.Render and an Applier on the
// pfctl or dir backend), redundancy.go (CARP through package redundancy),
// metrics.go and metricsserver.go, state.go, privsep*.go, dryrun.go.
//
// The agent owns the small interfaces it needs — Node, Prober, Dataplane,
// Redundancy — so tests and the lab can script them and a second data
// plane (nftables) is one more implementation chosen in newDataplane:
//
//	type Dataplane interface {
//		Name() string // "pfctl", "dir", "nft": the backend of applied/<node>
//		Check(ctx, cfg, verdict) error // render + validate, change nothing
//		Apply(ctx, cfg, verdict) (DataplaneResult, error)
//		Repair(ctx) (repaired []string, err error) // drift
//	}
package agent
