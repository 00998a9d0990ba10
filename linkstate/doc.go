// Package linkstate owns the cluster's decision on every uplink: the shared
// types of observations, overrides, policy and verdict, and Decide, the one
// place where policy lives.
//
// Decide is pure and deterministic: no I/O, no clock (the caller passes
// now), no goroutines, and nothing depends on map iteration order, so every
// node that feeds it the same input gets the same verdict. That is what lets
// the leader's verdict be checked by anyone, and lets nodes decide on their
// own gossip view while etcd is unreachable. A test enforces the imports.
//
// The decision, per link in policy order:
//
//   - Views. Only alive nodes count; a missing observation is unknown.
//     decide=any: up while one alive node sees the link up. majority: up
//     when more than half of the alive nodes with a view see it up; a tie
//     keeps the previous combined state, and with none a tie is up
//     (fail-open). all: down as soon as one alive node sees it down. When no
//     alive node has a view the previous combined state is kept, Unknown
//     before any data. This is LinkVerdict.Observed.
//   - Settling. A link still Unknown while an alive node probes it keeps
//     its place in Active (the place it had in the previous verdict: every
//     link at a fresh start) until its probes speak, so a cold start does
//     not drop isp2 from the balance because isp1 answered first. If they
//     stay silent for LinkPolicy.Settle (config: fall × interval + timeout)
//     from when a node was first seen probing it (LinkVerdict.Probing), the
//     silence counts as down. The audit log so records one settled
//     transition per link (unknown→up or unknown→down).
//   - Flap damping (BGP style), when Damping.Enabled: every Observed
//     down→up adds Penalty to the penalty, which halves every HalfLife; a
//     penalty above Suppress holds the link Down (Suppressed) until it
//     decays to Reuse. The penalty is stored with its time (Penalty,
//     PenaltyAt) and decayed on use, so time passing alone changes nothing
//     until a suppression ends.
//   - Overrides in force (Until zero or after now) win: drain → Down,
//     force-up → Up. Overrides on links not in the policy are ignored.
//   - Active: the up (or settling) links of the lowest tier that has one,
//     in policy order. With no link up, AllDown is set and Active follows all_down:
//     all (every link, fail-open), none (no link: the ifstated recipe's
//     alldown), keep (the previous Active, else every link). Before any
//     data, with every link Unknown, every link is Active whatever all_down
//     says: a cluster never starts from "all down".
//   - Impaired: alive nodes that see an Up link down, for CARP demotion.
//
// A LinkVerdict's Reason says why it has its State; it is rewritten only
// when the State, the suppression or the override changes, so small changes
// in the evidence do not make new verdicts. Each Transition carries that
// reason (plus what happened to Active, when that changed) and every known
// node's evidence.
//
// Decide returns prev itself, with no transitions, when nothing changed;
// otherwise the verdict has Seq prev.Seq+1 and Time now. NextEvent tells the
// caller when to decide again although no input changed (an override
// expiring, a suppression ending, a silent link reaching its Settle bound).
//
// gwctl render decides for a chosen set of up links by passing one
// synthetic alive node that sees those links up and the others down.
package linkstate
