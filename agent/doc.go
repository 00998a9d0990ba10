// Package agent is gwstated's run loop: it owns every goroutine of a
// running node and wires the rooms together in one direction —
//
//	config → state file (applied at once) → embedded etcd member →
//	probe.Prober → cluster.Node (gossip, election, verdicts) →
//	pfapply.Render → pfapply.Applier → applied/<node>, state.json
//
// It applies the last verdict it knows before the probes settle (never
// "all down" at boot), retries a failed apply with backoff while the
// previous rules stay in force, demotes this node's CARP group while it is
// impaired, repairs drifted anchors, reloads the config on SIGHUP (an
// invalid one is refused) and, when its context ends, resigns, leaves
// gossip and leaves pf as it is. It serves the Prometheus metrics and, on
// OpenBSD, restricts itself with unveil(2) (and pledge(2) for a witness).
//
// The cluster node and the prober sit behind the small Node and Prober
// interfaces this package owns, so tests and the lab can script them.
package agent
