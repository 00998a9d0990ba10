// Package probe owns link health probing: ICMP echo to each link's targets,
// the per-target and per-link state machines, and the Observation stream
// the agent gossips (linkstate.Observation, on change and as a heartbeat).
//
// # Layers
//
//   - Target (target.go) is the pure per-target state machine: results in
//     send order, time passed in, no clock, no I/O. Rules: Fall consecutive
//     misses → down; a full window of Window results with loss ≥ LossDown
//     (or, with RTTDown > 0, mean RTT > RTTDown) → down; Rise consecutive
//     answers and window loss < LossUp → up. The misses of the run that
//     took a target down on fall are "outage" misses that the loss rules
//     ignore, so recovery after an outage of any length takes Rise answers,
//     while a lossy target is judged on all its misses (see Target).
//   - tracker (tracker.go) turns sends and replies into those results: a
//     request unanswered after Timeout is a miss, a later answer is ignored,
//     and results are released in send order (an answer to request k+1
//     waits for request k's timeout), so "consecutive" means consecutive
//     requests.
//   - Link (link.go) aggregates k of n: up while ≥ Need targets are up, down
//     once Need can no longer be met, unknown in between (at start).
//   - Prober (prober.go) is the scheduler: one goroutine per link owns its
//     trackers and state machines and emits; one goroutine per target runs
//     the Transport. emit is never called concurrently; Seq increases by one
//     per emitted Observation across the node.
//   - ICMP (icmp.go) is the real Transport (pro-bing, privileged raw sockets,
//     IPv4 and IPv6). Tests use a fake Transport inside testing/synctest
//     bubbles, which is the fake clock of the scheduler.
//
// # Detection time
//
// With requests every Interval, the first request sent after a hard cut is
// known lost Timeout after it was sent, the Fall-th one (Fall-1)·Interval
// later. So a cut is detected between (Fall-1)·Interval + Timeout and
// Fall·Interval + Timeout after it happened: 1.1–1.2 s at the default
// profile (100 ms × 8, timeout 400 ms), 0.65–0.7 s at fast (50 ms × 9,
// timeout 250 ms). TestDetectionTime asserts the exact instant.
//
// False downs: with random loss p, a run of Fall misses starts at a given
// request with probability ≈ (1-p)·p^Fall. At 10% loss that is ≈0.008 per
// target per day at the default profile (10 requests/s, Fall 8) and ≈0.002 at fast
// (20 requests/s, Fall 9) — many short probes beat a few long ones.
//
// # Source binding
//
// Each target's socket is bound to the link's source address —
// nodes.<node>.probe_source.<link> for targets of its IP version, else the
// first global address of the link's interface of the target's version — so
// a probe carries that link's source address and pf's route-to rules (the
// pass-<link> anchors) send it out by that link; in the Linux lab, policy
// routing plays that part. The interface itself is not forced (no
// SO_BINDTODEVICE/IP_PKTINFO ifindex): that would be Linux-only.
//
// # Spreading the requests
//
// pro-bing v0.9.1 sends on a fixed time.Ticker per Pinger (ping.go,
// runLoop) and has no per-send hook, so per-send jitter would need a
// socket per request or a fork. Instead New spreads the first request of
// every target evenly over the interval (target g of G starts at
// g·Interval/G, plus a deterministic per-target nudge of up to half a slot
// from an FNV hash of link and target); the tickers keep those phases, so 64
// links × 4 targets at 200 ms send one request every ~0.8 ms, never in a
// burst. Two nodes start at unrelated times, so they do not synchronise.
//
// # pro-bing details handled here
//
// One Pinger (one raw socket, Count -1) per target, RecordRtts/RecordTTLs
// off. pro-bing keeps every unanswered sequence number for the Pinger's
// life, so a Pinger is replaced (same phase) every 60 000 requests to bound
// memory on a dead link. A failed send (OnSendError, e.g. no route) is a
// miss. A Pinger that cannot start (address gone) marks its target down at
// once and is retried with back-off (WithRetry, 1 s doubling to 30 s).
// EPERM/EACCES on the socket is ErrNoPrivilege and stops Run: "run as root
// or grant CAP_NET_RAW; on OpenBSD run as root".
//
// # Network namespaces (Linux lab)
//
// WithNetns(path) opens each socket inside the namespace bound at path: the
// goroutine locks its OS thread, setns(2)s into the namespace, resolves the
// source address and opens the socket there (pro-bing opens it in
// RunWithContext, before calling OnSetup), and OnSetup setns(2)s back and
// unlocks; a socket stays in the namespace it was created in. Should the
// way back fail, the thread stays locked and dies with its goroutine.
// Everything else of the process stays in its own namespace. The agent in
// the lab runs as a separate process under `ip netns exec` instead and
// needs no option.
package probe
