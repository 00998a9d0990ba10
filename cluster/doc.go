// Package cluster makes the nodes of a gwstated cluster agree: it gossips
// every node's link observations over memberlist, elects one leader in
// etcd, has the leader decide with linkstate.Decide and commit the verdict
// with its audit records in one fenced txn, and delivers every verdict to
// the node's agent to apply. It owns the etcd key layout (records.go) that
// gwctl reads.
//
// # Agent API
//
//	n, err := cluster.New(cfg, log)            // ErrNoGossipKey without a key (or gossip.insecure)
//	go n.Run(ctx)                               // owns every goroutine; returns after they end
//	n.Publish(obs)                              // probe → gossip, pushed to peers at once
//	n.SetCARP(carp)                             // CARP role → gossip, nodes/<node>
//	for v := range n.Verdicts() { apply(v); n.ReportApplied(ctx, rec) }
//	n.Status()                                  // mode, leader, members, last verdict
//
// Run returns when ctx ends: the leader resigns (its election key is
// deleted), the session lease is revoked (nodes/<node> disappears), gossip
// is left with a "leaving" state so peers report the node as left, not
// dead. Verdicts holds only the newest verdict: a slow reader skips to the
// latest, never misses it. Options: WithClient (share an etcd client),
// WithWitness, WithClock, WithVersion.
//
// gwctl uses NewClient (fails fast with ErrEtcdUnreachable naming the
// endpoints and the timeout), Keys to read the records itself, Store's
// PutOverride/DeleteOverride for drain/undrain (each override change
// appends an audit record of kind "override"), and
// GenerateKey/WriteKeyFile/ReadKeyFile for keygen. Store also reads
// (Verdict, Overrides, Audit, Nodes, Applied) for the leader and the tests.
//
// # Gossip
//
// memberlist, encrypted (AES-GCM, SecretKey) with the key in
// cluster.gossip.key_file: base64 of 16, 24 or 32 bytes, written by
// WriteKeyFile with mode 0600. Without a key New refuses to start unless
// cluster.gossip.insecure is set, and then logs at error level that gossip
// is unencrypted. A node with another key cannot join: its packets fail
// to decrypt and it never appears in the others' members.
//
// Each node gossips its NodeState (observations per link, CARP, config
// hash, applied verdict seq/hash, mode, witness flag; at most 32 KiB, per-
// target details dropped first). A local change is sent to every member
// at once over TCP (SendReliable); push-pull (LocalState) carries every
// known state, so a missed push is repaired at the next exchange. States
// are ordered per node by Gen (starts at the wall clock, so a restarted
// node supersedes its old states).
//
// Membership: join and dead come from memberlist's EventDelegate; "left"
// is a node that gossiped a leaving state before it went. "suspect" is our
// own notion, because memberlist does not expose its failure detector's
// suspicion: a member memberlist still lists whose direct probes
// (PingDelegate) have gone unanswered for two probe rounds. Suspect
// members still count as alive for Decide — memberlist has not declared
// them dead — so Decide's alive flag is exactly memberlist's. Timing
// defaults suit a LAN pair (probe 500 ms, timeout 250 ms, suspicion ×3:
// a dead peer is declared in about 1.5–4 s); cluster.gossip.* tunes them.
//
// # etcd
//
// Keys under /gwstated/<cluster>/ (records.go). Each node keeps a session
// (lease, cluster.etcd.session_ttl) carrying nodes/<node> and its election
// key. The election is concurrency.Election's protocol (oldest key under
// election/ leads) with our own campaign, because Election.Campaign, when
// cancelled, resigns with a context that never ends and blocks while etcd
// has no quorum — the moment we must give up and hold.
//
// The leader runs Decide whenever gossip views, membership or overrides
// change and when NextEvent says an override expires or a suppression
// ends, and commits the verdict, one AuditRecord per Transition, the audit
// counter (audit-seq) and the deletion of records beyond
// cluster.etcd.audit_retention (default 10 000) in one txn guarded by
// Compare(CreateRevision(leader key) == leader rev). A deposed leader's
// write changes nothing and returns ErrNotLeader; it then stops deciding.
// Audit sequence numbers come from the audit-seq counter, bumped under a
// mod-revision compare, so the leader and gwctl drain never collide.
//
// Every node reads the verdict and the overrides, then watches both (one
// watch on [override/, verdict]) from the next revision. When the watch
// ends it resumes from the last revision seen, so no verdict in between is
// missed; if that revision was compacted it reads again.
//
// # etcd unreachable
//
// When the session is lost (no keepalive answer within session_ttl) and no
// new lease is granted within cluster.etcd.dial_timeout, the node changes
// mode. on_etcd_loss: hold (default) keeps the last verdict: nothing new
// is delivered, nothing is flushed. on_etcd_loss: gossip has every node
// run the same Decide on its gossip view (same inputs, same verdict on
// every node) and deliver it; the transitions are kept as audit records
// marked without_etcd. When etcd is back the node elected leader writes
// its kept records and, if newer, its gossip verdict, in one fenced txn;
// the other nodes' kept records (the same decisions) are dropped. A node
// coming back does not re-apply an etcd verdict older than its gossip one.
//
// # Embedded etcd and the witness
//
// With cluster.etcd.embed the agent runs an etcd member (etcdmember.Start)
// with nodes.<name>.etcd peer/client URLs. Use three members: fw1, fw2 and
// a witness (gwstated --witness: etcd member and gossip only, no probes,
// no pf, never leader). etcd commits only with a majority of its members,
// and a majority of two is two: if one of a pair of firewalls dies the
// other has no quorum, no leader can be elected and no verdict can be
// written (hold keeps the rules; gossip mode decides without etcd). With a
// third member anywhere on the LAN (a small VM, a switch-side box), any
// one of the three may die and the other two still hold a quorum.
package cluster
