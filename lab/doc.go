// Package lab builds the Linux network-namespace lab that stands in for a
// CARP pair of OpenBSD firewalls and their ISPs in tests, `make demo` and
// `make lab-bench`. It owns the namespaces, links, addresses and routes of
// that topology, fault injection with nft, and their teardown.
//
// # Topology
//
// Namespaces are named gwlab-<pid>-<n>-<role>, so concurrent test processes
// and labs never clash, and a crashed run's namespaces can be recognised
// and removed by Sweep. The roles are:
//
//	fw1, fw2   the firewalls. Interfaces: wan0, wan1, ... (one per ISP,
//	           in ISP order), sync0, lan0 — names that pass config
//	           validation.
//	isp1, ...  one gateway per ISP. It holds the bridge br0 of that ISP's
//	           segment, with the gateway address on it; both firewalls'
//	           uplinks are ports of that bridge (ports named fw1, fw2). It
//	           also holds Internet4/Internet6 on lo: one "internet host"
//	           address reachable behind every gateway, the upstream target
//	           for multi-target probing.
//	witness    the third cluster member (etcd, gossip); it holds the sync
//	           bridge br0 joining fw1 sync0, fw2 sync0 and itself.
//	lan        a LAN host; it holds the LAN bridge br0 joining fw1 lan0,
//	           fw2 lan0 and itself.
//
// Addresses come from documentation and benchmarking ranges only:
//
//	ISP i segment   198.18.i.0/24, 2001:db8:i::/64; gateway .1 / ::1,
//	                fwK .1K / ::1K (fw1 198.18.1.11, fw2 198.18.1.12)
//	internet host   203.0.113.1, 2001:db8:ffff::1 (in every gateway)
//	sync segment    192.0.2.0/24: fwK 192.0.2.K, witness 192.0.2.100
//	LAN             198.51.100.0/24: fwK 198.51.100.(K+1), host .100
//
// # Routing: why a mis-bound probe takes the wrong uplink
//
// Each firewall's main table has its default route via the LAST ISP's
// gateway. Each uplink address has a policy rule (`ip rule from <addr>
// table 100+i`) whose table routes the default via that ISP's gateway —
// what pf's route-to rules in the pass-<link> anchors do on OpenBSD. A probe
// of the internet host sent from isp1's address therefore leaves by wan0,
// while a probe that is not bound to its source leaves by the last uplink:
// dropping everything on the last ISP's segment breaks a mis-bound isp1
// probe and leaves a correctly bound one working.
//
// # Faults
//
// Faults are nft rules in table "inet gwlab" of a namespace (input and
// output hooks): a loss percentage (100 is a hard drop, less uses
// `numgen random mod 100 < N`), a direction (ingress, egress or both, seen
// from that namespace), optionally restricted to peer addresses (one
// firewall only) or an interface. Clear removes them. Every command is
// exec'd with an argument list, never through a shell.
//
// # Processes and extra plumbing
//
// Command returns an exec.Cmd running a program inside a role's namespace
// (`ip netns exec`), e.g. a gwstated agent; IP runs `ip -n <ns> ...` for
// addresses or routes a test adds to the standard topology; NetnsPath gives
// the bind mount for setns(2) (probe.WithNetns).
//
// # Cluster harness
//
// StartCluster runs gwstated (--dry-run: the dir backend) for fw1, fw2 and
// the witness, and etcd, as processes in the lab: build.go compiles them,
// config.go writes the cluster config from cluster.yaml.tmpl, process.go
// starts, signals and stops them, observe.go reads what they did, wait.go
// waits for it. What the harness reads is machine-readable: each node's
// anchors/applied.json ({seq, hash, applied_at}), its /metrics (Metrics,
// WaitMetric: etcd mode, each link's observed state), `gwctl history
// --json` and `gwctl render --json`. Agent logs (JSON lines, AgentLog) are
// for people, shown when a test fails; nothing here parses them. Events the
// harness counts or times are metrics: rule changes
// (gwstated_ruleset_changes_total), probe targets going down
// (gwstated_probe_target_transitions_total), when a firewall's probe view
// of a link changed (gwstated_link_observed_change_timestamp_seconds, the
// probe-to-apply overhead of lab/bench) and when it last demoted itself
// (gwstated_last_demotion_timestamp_seconds); MetricSum and UnixSeconds
// read them.
//
// # dataplane: pf on an emulated OpenBSD
//
// With ClusterOptions.Dataplane = DataplanePF the firewalls run the real
// pfctl backend instead of --dry-run: config pf.backend pfctl,
// pf.drift_interval 1s, and gwstated's hidden flag --lab-pf-tools DIR
// (not in --help; lab only) makes it run DIR/pfctl, DIR/route and
// DIR/ifconfig and write its rule files to DIR/rules. DIR is
// NodeDir(node)/pfemu, where those three names are links to lab/pfemu, a
// multi-call program that emulates OpenBSD's pfctl(8), route(8) and
// ifconfig(8) from their source (gwstated/pfapply/pfemu, pfapply/pfrule)
// and keeps pf's anchors, automatic tables, states, the default route and
// the carp demote counter in DIR/state.json. Probes, gossip, etcd and
// verdicts are as ever; pfctl -n checks, loads, drift reads (-sr, -T
// show), state kills (-k label), route change/add and carpdemote go
// through the emulated programs. Applied, Anchor and DryRunLog then read
// the emulator (the ruleset hash of what pf holds, the anchor text pf
// loaded, the commands run); Emu gives a test the emulator itself, to add
// states or change an anchor by hand. scenario_pf_test.go runs the
// failover and drift scenarios this way.
//
// # The Linux variant with real traffic
//
// RouteLAN makes the firewalls route for real (forwarding on,
// reverse-path filtering off, the LAN host's default route via
// LANGateway, 198.51.100.1). StartLinux runs the cluster with
// `dataplane: nft` (cluster.yaml.tmpl with NFT set: each firewall gets its
// own copy of the config naming its own vrrp.track_file, since the lab's
// nodes share one file system; gwstated's tables and rule priorities start
// at 200, above the lab's own policy routing), keepalived on both
// firewalls' lan0 (StartKeepalived: VRRPv3, advert_int 0.1, fw1 priority
// 110, fw2 100, the track file with weight -1; run in the foreground with
// its pid files in the work directory, owned and stopped by the harness),
// and the traffic server (lab/traffic, cmd lab/gwtraffic) in every ISP's
// namespace bound to the internet host address, answering with the ISP's
// name and the NAT source it saw. StartClient runs the client on the LAN
// host; its progress (Status) is a file rewritten every 100 ms and its
// report is read when it stops. StaticNAT and ManualDataplane put the
// same kind of rules in by hand, for the traffic tool's own test and for
// the ifstated method of make lab-bench.
//
// # State sync
//
// LinuxOptions.SharedNAT adds on every ISP segment a VRRP address fw1 and
// fw2 share (WANAddress, 198.18.<i>.10) as the link's nat_to, in one
// keepalived sync group with the LAN gateway (StartKeepalivedSync), and
// makes conntrack strict (no TCP pick-up, invalid packets dropped);
// Conntrackd also runs conntrackd on both firewalls (FTFW over unicast UDP
// on sync0, its socket and lock file per namespace in the work directory)
// and the group's notify lines run `gwctl ctsync`. StartStreams runs a
// client with only long-lived TCP streams; TestLinuxStateSync measures
// what a master change costs them, with and without conntrackd
// (ctsync.go).
//
// # Teardown
//
// Close kills the processes still running in the lab's namespaces and
// deletes the namespaces. Start registers Close with t.Cleanup; SIGINT and
// SIGTERM close every open lab before the signal takes its default effect;
// Sweep removes namespaces left by runs that died (their pid is gone).
//
// Everything here needs root, iproute2 (`ip`) and nftables (`nft`).
// Require skips a test when they are missing, or fails it when
// GWSTATED_REQUIRE_LAB=1.
//
// # What is not here
//
// The part other packages' tests share lives in internal/netns: whether
// namespaces can be made (Missing, Require, which this package's Missing
// and Require call), the name prefix Sweep recognises, and a scratch
// namespace for a test that needs one empty namespace rather than the
// topology (agent, nftapply and deploy build their interfaces in it).
// Waiting is internal/testkit's. The rest stays one package: waiting on
// the cluster, process handling, fault injection and the observers are
// used only by the lab's own tests and commands (lab/bench, lab/chaos,
// lab/demo), and they all work on one Lab and one Cluster; probe's tests
// use the whole lab (Start, the ISPs' addresses), not a piece of it.
package lab
