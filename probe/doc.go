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
//     while a lossy target is judged on all its misses (see Target). The
//     window's sums are kept as results come and go: a result costs O(1)
//     whatever the window's size.
//   - tracker (tracker.go) turns sends and replies into those results, in
//     send order. A request answered within Timeout is an answer, else a
//     miss — that is what the window sees. The fall rule is on the time
//     since the last answer: once the Fall-th request after the last
//     answered one has gone unanswered for RTO (below), the run is
//     released as Fall misses at once.
//   - Link (link.go) aggregates k of n: up while ≥ Need targets are up, down
//     once Need can no longer be met, unknown in between (at start).
//   - Prober (prober.go) is the scheduler and owns all that state under one
//     mutex: Run's goroutine sends every target's requests and releases
//     misses at their deadlines (a heap of targets by next event; requests
//     go out on a send grid of min(interval/4, 50 ms), so that requests due
//     in the same quarter interval go out in one wake-up, and misses are
//     released on a grid of min(interval/32, 5 ms)). On Linux it also reads
//     the replies, at each wake-up before any deadline (the transport is a
//     Poller); elsewhere each socket's receive goroutine feeds them in.
//     emit is called with the state locked, so never concurrently; Seq
//     increases by one per emitted Observation across the node.
//   - Transport (transport.go) opens one Endpoint per source address — or
//     per interface without one — and IP version, shared by every target
//     probed from it; targets are told apart by echo identifier. A
//     Transport that is a BatchSender gets each wake-up's requests at once;
//     one that is a Poller is read by the scheduler (Poll).
//     ICMP (icmp.go, icmp_linux.go, icmp_other.go) is the real one; tests
//     use a fake one inside testing/synctest bubbles, which is the fake
//     clock.
//
// # Detection time
//
// RTO is TCP's retransmission timeout (RFC 6298) over the target's
// answers, srtt + 4·rttvar, at least Interval/2 and at most Timeout
// (Timeout before the first answer). With requests every Interval, the
// Fall-th request after the last answered one is sent (Fall-1)·Interval to
// Fall·Interval after a hard cut and the target is down RTO later:
// Fall·Interval + RTO - RTT after the last answer arrived, whatever the
// path's RTT. On a steady path (RTO at its floor) that is 0.75–0.85 s from
// the cut at the default profile (100 ms × 8), 0.43–0.48 s at fast
// (50 ms × 9) and 0.23–0.25 s at bfd (15 ms × 16). TestDetectionTime
// asserts the exact instant; a slow answer (a delay spike) breaks the run
// as long as it comes within (Fall-1)·Interval + RTO, so only loss takes a
// target down on fall.
//
// False downs: with random loss q, a run of Fall misses starts at a given
// request with probability (1-q)·q^Fall. At 10% loss that is ≈0.008 per
// target per day at default, ≈0.002 at fast and ≈5e-10 at bfd; at 20%
// loss bfd still gives ≈3e-5. docs/probing.md has the table;
// TestSimulationFallRate checks the formula against a simulation and
// TestSimulationBFD24h simulates 24 h of bfd at 10% and 20% loss.
//
// # Why not pro-bing
//
// pro-bing (v0.9.1) was the ICMP layer until issue 17. It fits one target
// per Pinger: one raw socket, three goroutines (send ticker, receive loop
// with a 100 ms read deadline, run loop) and a map of every unanswered
// sequence number per target. Every raw ICMP socket receives every ICMP
// packet for its address, so with 64 links × 4 targets sharing a source
// each reply was copied to and parsed by 256 sockets, and 256 read
// deadlines woke the process 2560 times a second: 16–26% of a core and
// ~1100 goroutines for 1280 requests a second. pro-bing has no way to
// share a socket between targets, to send on a caller's schedule or to
// hand a reply to a caller's demultiplexer, so the transport now uses the
// standard library's raw IP sockets and golang.org/x/net/ipv4, ipv6 for
// the kernel ICMP filters directly (icmp.go, icmp_linux.go): 1 + (sockets)
// goroutines, no read deadlines, each reply read once (now 1 + one per IP
// version on Linux: see Sockets and filters).
//
// # Sockets and filters
//
// On Linux the ICMP transport opens one raw socket per IP version (two at
// most), shared by every source: each request names its source address in
// an IP_PKTINFO (IPv4) or IPV6_PKTINFO (IPv6) control message, and the
// replies are told apart by the address they were sent to (the IPv4
// header's destination; IPV6_PKTINFO on receive). Elsewhere (OpenBSD,
// whose raw IPv4 sockets take no per-packet source: IP_SENDSRCADDR is for
// UDP) it opens one socket per source address and IP version, bound to it,
// so a socket receives only what is addressed to its address. Either way
// an echo request carries the target's identifier, the low 16 bits of its
// sequence number and a payload of a per-process random token and the
// 64-bit sequence number; the reader drops anything else (other pingers'
// replies, other ICMP types). The kernel filters out everything but echo
// replies on Linux: ICMP6_FILTER (RFC 3542) and ICMP_FILTER for IPv4.
// On OpenBSD neither is set — pledge(2) kills a process that sets an
// IPPROTO_ICMPV6 option (kern_pledge.c, pledge_sockopt) — and the reader
// drops the rest itself; the kernel filter is an optimisation, never the
// only path.
//
// Why one socket rather than one per source: with a socket per source the
// Go runtime wakes each socket's goroutine for its own link's replies —
// 320 wake-ups a second at 64 links × 200 ms, each with its system calls
// and a trip through the scheduler — where one socket reads the replies to
// a whole wake-up's requests with one recvmmsg, and one sendmmsg sends
// them. The prober went from 65 goroutines to 2, and to 1 once the
// scheduler read the replies itself (docs/probing.md).
//
// # System calls and wake-ups
//
// On Linux a wake-up's requests leave in one sendmmsg(2), and nothing
// waits for the replies: the scheduler reads whatever is queued with
// recvmmsg(2), up to 64 at a time, each time it wakes up, before it looks
// at any deadline (Poller), and wakes one step of the send grid after
// each wake-up that sent, so a reply is read at most a step after it
// came when nothing else is due. Every reply carries the kernel's receive
// time (SO_TIMESTAMPNS), so reading it late changes no RTT and no verdict
// (TestDetectionTime runs with a polled transport too;
// TestPolledReplyAtDeadline: a reply that came just before a fall's
// deadline counts). The sockets are made with socket(2), outside the Go
// runtime's network poller (a registered socket would wake the thread
// sleeping in epoll_wait for the runtime's timers at every reply), with
// 4 MiB buffers (replies wait for the next wake-up; a send never waits:
// MSG_DONTWAIT, a full buffer is a failed request). So the prober is one
// goroutine, woken 4 times an interval (the send grid) whatever the
// number of links; heartbeats go out on the send grid too. Both calls are raw system calls,
// without telling the Go scheduler: a system call made through package
// syscall while the process was idle wakes the runtime's sysmon thread,
// which then polls every 20 µs for a millisecond or more (18% of the
// prober's CPU samples when each wake-up did so; docs/probing.md).
// Elsewhere x/net's WriteBatch/ReadBatch make one sendmsg/recvmsg per
// packet and a goroutine per socket reads. The buffers are reused:
// sending and receiving allocate nothing (BenchmarkScale's allocs/s at
// 64 × 4 at 200 ms are the once-a-second heartbeat Observation of each
// link).
//
// # Source binding
//
// Every request is sent from the link's source address —
// nodes.<node>.probe_source.<link> for targets of its IP version, else the
// first global address of the link's interface of the target's version —
// by the socket's bind (OpenBSD) or the request's PKTINFO (Linux, where
// the route lookup then uses it as it would a bound address), so a probe
// carries that link's source address and pf's route-to rules (the
// pass-<link> anchors) send it out by that link; in the Linux lab, policy
// routing plays that part (TestICMPSourceBinding, TestICMPSharedSocket).
// The interface itself is not forced (no SO_BINDTODEVICE; a PKTINFO
// interface only for a link-local source). A source that cannot be
// opened (address gone; on Linux, Open checks that the address can be
// bound to, as the socket's own bind did) marks its targets down at once
// and is retried with back-off (WithRetry, 1 s doubling to 30 s).
// EPERM/EACCES is ErrNoPrivilege and stops Run: "run as root or grant
// CAP_NET_RAW; on OpenBSD run as root". A failed send (no route, source
// address gone) is a miss; after 64 failed sends in a row the source's
// endpoint is closed and opened again, its source address resolved anew
// (the interface's address may have changed).
//
// # Spreading the requests
//
// New spreads the links evenly over the interval (link i of L starts at
// i·Interval/L, plus a deterministic nudge of up to half a slot from an
// FNV hash of the link's name), and every target keeps its link's phase:
// a link's requests leave together and their replies come back together
// (one recvmmsg reads them on Linux; one wake-up of a socket's receive
// goroutine elsewhere). The send grid then gathers the links due in the
// same quarter interval into one wake-up. The
// scheduler records requests as sent under the lock and makes the system
// calls after releasing it, so receiving is never held up by sending. Two
// nodes start at unrelated times, so they do not synchronise.
//
// # Network namespaces (Linux lab)
//
// WithNetns(path) opens each socket inside the namespace bound at path: a
// goroutine locks its OS thread, setns(2)s into the namespace, resolves the
// source address, checks it or opens the socket, setns(2)s back and
// unlocks; a socket stays in the namespace it was created in. Should the
// way back fail, the thread stays locked and dies with that goroutine.
// Everything else of the process stays in its own namespace. The agent in
// the lab runs as a separate process under `ip netns exec` instead and
// needs no option.
package probe
