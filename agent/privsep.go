package agent

import (
	"path/filepath"
	"strings"

	"gwstated/pfapply"
	"gwstated/redundancy"
)

// Paths is everything gwstated reaches on disk once it runs, for Restrict.
// Empty entries are ignored. A path named twice gets the union of its
// permissions. Paths must exist when Restrict runs (a file that does not exist
// yet needs its directory to exist, so that it can be created there).
type Paths struct {
	Config string   // the config file, read again on SIGHUP: "r"
	Read   []string // gossip key, etcd TLS files, etcd password file: "r"
	Write  []string // state dir, pf.dir, embedded etcd data dir: "rwc"
	Exec   []string // the programs the agent runs (pfctl, route, ifconfig): "rx"
	// Pledge also calls pledge(2) with Promises after unveil. It must only be
	// set when nothing can set up a socket the pledge forbids once it is in
	// force; see Promises and gwstated(8), SECURITY.
	Pledge bool
	// Witness selects the witness's smaller promise set (WitnessPromises):
	// a witness has no prober and runs no programs, so it can pledge.
	Witness bool
}

// DefaultExec lists the base-system programs gwstated runs on OpenBSD:
// pfctl(8) loads anchors and kills states, route(8) changes the default
// route, ifconfig(8) reads CARP state and sets the demotion counter.
var DefaultExec = []string{pfapply.DefaultPfctl, pfapply.DefaultRoute, redundancy.DefaultIfconfig}

// systemUnveils are the files every gwstated needs whatever its config says.
var systemUnveils = []unveilRule{
	// Go's resolver reads these for host names in cluster.gossip.join,
	// cluster.etcd.endpoints and the embedded member's URLs; it re-reads
	// resolv.conf when it changes.
	{"/etc/resolv.conf", "r"},
	{"/etc/hosts", "r"},
	// os/exec connects a child's unused stdin/stdout/stderr to /dev/null.
	{"/dev/null", "rw"},
}

// unveilRule is one unveil(2) call.
type unveilRule struct {
	Path  string
	Perms string // subset of "rwxc", in that order
}

// unveilRules returns the unveil(2) calls for p, system files first, then in
// the order of the Paths fields; each path once, with the union of its
// permissions, cleaned.
func unveilRules(p Paths) []unveilRule {
	var rules []unveilRule
	index := map[string]int{}
	add := func(path, perms string) {
		if path == "" {
			return
		}
		path = filepath.Clean(path)
		if i, ok := index[path]; ok {
			rules[i].Perms = unionPerms(rules[i].Perms, perms)
			return
		}
		index[path] = len(rules)
		rules = append(rules, unveilRule{Path: path, Perms: unionPerms("", perms)})
	}
	for _, r := range systemUnveils {
		add(r.Path, r.Perms)
	}
	add(p.Config, "r")
	for _, f := range p.Read {
		add(f, "r")
	}
	for _, d := range p.Write {
		add(d, "rwc")
	}
	for _, x := range p.Exec {
		// "r" as well: os/exec stats the program (stat(2) looks the path
		// up for reading) and checks it with faccessat(2) before it forks.
		add(x, "rx")
	}
	return rules
}

// unionPerms merges two unveil permission strings into canonical "rwxc" order.
func unionPerms(a, b string) string {
	var out strings.Builder
	for _, c := range "rwxc" {
		if strings.ContainsRune(a, c) || strings.ContainsRune(b, c) {
			out.WriteRune(c)
		}
	}
	return out.String()
}

// promise is one pledge(2) promise and what gwstated needs it for.
type promise struct {
	Name string
	Why  string
}

// promises is the pledge(2) set, each with its reason; gwstated(8) SECURITY
// repeats them. Not in the set: "dns" (Go's resolver uses ordinary inet
// sockets and reads resolv.conf under rpath; only libc's resolver needs it),
// "unix" (no unix sockets), "id" (gwstated does not change user), and no
// execpromises: the programs gwstated runs start with neither pledge nor
// unveil, as execve(2) clears both when no execpromises are set.
var promises = []promise{
	{"stdio", "the Go runtime: memory, threads, timers, kqueue, I/O on open descriptors"},
	{"rpath", "read the config on SIGHUP, the gossip key, TLS files, resolv.conf, the state file"},
	{"wpath", "write the state file, pf.dir anchor files and the embedded etcd member's data"},
	{"cpath", "create and rename those files (atomic write + rename), create pf.dir"},
	{"fattr", "chmod/fchmod the files it creates (a temp file gets its final mode before the rename)"},
	{"flock", "the embedded etcd member locks its WAL and bbolt database files"},
	{"inet", "memberlist (UDP+TCP), the etcd client and member, the metrics listener, ICMP probes on sockets already set up"},
	{"route", "list interfaces and addresses (memberlist address selection, probe source checks)"},
	{"proc", "fork the pfctl/route/ifconfig children and kill one that overruns its timeout"},
	{"exec", "run /sbin/pfctl, /sbin/route and /sbin/ifconfig, which start unpledged and unveiled"},
}

// witnessPromises is the pledge(2) set of a witness (gwstated --witness):
// an etcd member and gossip, no probes, no pf, no children.
var witnessPromises = []string{"stdio", "rpath", "wpath", "cpath", "fattr", "flock", "inet", "route"}

// WitnessPromises returns the promise string Restrict uses for a witness:
// Promises less "proc" and "exec" (it runs no programs). A witness opens
// no raw sockets, so nothing it does needs more than "inet"; the agent
// pledges every witness.
func WitnessPromises() string { return strings.Join(witnessPromises, " ") }

// Promises returns the pledge(2) promise string Restrict uses when
// Paths.Pledge is set.
//
// pledge(2) allows only a short list of socket options under "inet", and a
// forbidden call kills the process with an uncatchable SIGABRT. Read against
// pledge_sockopt() in sys/kern/kern_pledge.c (rev. 1.247, openbsd/src
// 94895ce9): every option at level IPPROTO_ICMP or IPPROTO_ICMPV6 is
// forbidden, ICMP6_FILTER included, so the prober sets no kernel ICMP filter
// on OpenBSD (probe's kernelICMP6Filter) and filters in its reader. What it
// then does when it opens or reopens a socket — socket(2) and bind(2) of a
// raw AF_INET/AF_INET6 socket, Go's SO_BROADCAST on IPv4 (SOL_SOCKET,
// allowed under "inet"), sendmsg/recvmsg — is within "stdio inet". A
// firewall node still runs with unveil(2) only: the full set has not been
// run on an OpenBSD firewall (pf, CARP, the embedded member and the prober
// together), and a missed call would kill the agent in production, not in a
// test. The promises are listed so that gwstated(8) can say what it would be.
func Promises() string {
	names := make([]string, len(promises))
	for i, p := range promises {
		names[i] = p.Name
	}
	return strings.Join(names, " ")
}
