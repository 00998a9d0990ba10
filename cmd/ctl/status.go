package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/cluster"
	"gwstated/linkstate"
)

func init() {
	register(&command{
		name:    "status",
		args:    "[--config FILE | --endpoints URLS --cluster NAME] [--json] [--watch]",
		summary: "show the cluster: etcd, leader, nodes, links, overrides, warnings",
		help: `Status reads the cluster's records from etcd and shows, in this order:
the cluster name; etcd health (members, raft leader, each endpoint's
answer); the agent leader (owner of the election key) and since when; the
current verdict (seq, time, deciding node, active links); every node with
its gossip state as its peers report it (alive, suspect, dead, left; gone
when the node has no nodes/ record), its role in the redundancy protocol
(ROLE: carp0=MASTER on a CARP pair, vrrp=BACKUP on a keepalived VRRP pair),
mode (etcd, hold, gossip),
the verdict seq it applied, its ruleset hash and config hash; every link
with its verdict, since when, the override in force and the reason; each
node's view of each link (state, loss, RTT, last answered probe); the
operator overrides with reason and expiry.

Every disagreement is printed as a line starting with "warning:" after
the tables: ruleset hash mismatch between nodes at the same verdict seq, a
node behind the verdict seq, config hash drift between nodes, an impaired
node, a node in hold or gossip mode, an apply error, a node without a
nodes/ record, a suspect or dead member, a link down or all links down, an
etcd endpoint that does not answer, no leader, an expired override still
in etcd.

In the tables, "*" after a node marks the agent leader, "*" after a link's
verdict marks a link that carries the balanced traffic, "!" after an
applied seq marks an apply error (see the warnings), and "-" an absent
value. Times are local; "ago" is counted from the reading.

--watch redraws whenever a record under the cluster's prefix changes,
until interrupted (the screen is cleared between draws only when standard
output is a terminal).

` + connHelp + `

--json prints one JSON object (with --watch, one per draw):
  cluster     string   cluster name
  time        string   RFC 3339 time of the reading
  health      string   "healthy", "degraded" or "unreachable"
  error       string   why etcd is unreachable (only then)
  etcd        object   members [{name, leader}], leader (member name),
                       endpoints [{endpoint, ok, member, version, error, alarms}]
  leader      object   {node, since} of the agent leader, or null
  verdict     object   {seq, time, leader, config_hash, audit_seq, active,
                       all_down, impaired [{node, link}]}, or null
  nodes       array    {name, gossip, record, witness, leader, carp
                       [{interface, state, demote}] (VRRP: interface
                       "vrrp"), mode, version,
                       config_hash, reported_at, applied {node, seq, hash,
                       time, error, backend} or null}
  links       array    {name, state, observed, since, reason, active,
                       suppressed, override, views [{node, state, loss,
                       rtt_ms, since, last_ok}]}
  overrides   array    {link, action, reason, by, since, until, expired}
  warnings    array    of strings, the warning lines without "warning: "
Times are RFC 3339; absent times are omitted. Fields may be added; none
will be renamed or removed.

Exit status: 0 healthy (no warning), 1 degraded (at least one warning),
2 etcd unreachable or bad command line.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) int {
			cf := addConnFlags(fs)
			asJSON := fs.Bool("json", false, "print JSON (see above) instead of tables")
			watch := fs.Bool("watch", false, "redraw on every change until interrupted")
			return func(ctx context.Context, io *stdio, args []string) int {
				if len(args) > 0 {
					fmt.Fprintf(io.err, "gwctl status: unexpected argument %q\n", args[0])
					return exitUsage
				}
				return runStatus(ctx, io, cf, *asJSON, *watch)
			}
		},
	})
}

// Health values of Status.Health.
const (
	healthHealthy     = "healthy"
	healthDegraded    = "degraded"
	healthUnreachable = "unreachable"
)

func runStatus(ctx context.Context, io *stdio, cf *connFlags, asJSON, watch bool) int {
	printFn := printStatusText
	if asJSON {
		printFn = printStatusJSON
	}
	c, err := cf.open(ctx)
	if err != nil {
		if asJSON && errors.Is(err, cluster.ErrEtcdUnreachable) {
			printStatusJSON(io.out, unreachableStatus(cf.cluster, err, io.now()), io.now())
			fmt.Fprintf(io.err, "gwctl: %v\n", err)
			return exitUsage
		}
		return connExit(io, err)
	}
	defer c.Close()
	if !watch {
		in, err := gatherStatus(ctx, c)
		if err != nil {
			if asJSON && errors.Is(err, cluster.ErrEtcdUnreachable) {
				printStatusJSON(io.out, unreachableStatus(c.name, err, io.now()), io.now())
			}
			fmt.Fprintf(io.err, "gwctl: %v\n", err)
			return exitUsage
		}
		now := io.now()
		st := computeStatus(in, now)
		printFn(io.out, st, now)
		return st.exitCode()
	}
	return watchStatus(ctx, io, c, printFn)
}

// watchStatus draws the status, then redraws it after every change under
// the cluster's prefix, until ctx ends; it returns the last draw's status.
func watchStatus(ctx context.Context, io *stdio, c *conn, printFn func(io.Writer, Status, time.Time)) int {
	code := exitOK
	var events clientv3.WatchChan
	stopWatch := func() {}
	defer func() { stopWatch() }()
	for {
		in, err := gatherStatus(ctx, c)
		if ctx.Err() != nil {
			return code
		}
		now := io.now()
		if io.isTerminal {
			fmt.Fprint(io.out, "\x1b[H\x1b[2J")
		}
		if err != nil {
			fmt.Fprintf(io.out, "%s  %v\n", fmtTime(now, now), err)
			code = exitUsage
		} else {
			st := computeStatus(in, now)
			printFn(io.out, st, now)
			code = st.exitCode()
			if events == nil {
				events, stopWatch = c.watch(ctx, in.Revision+1)
			}
		}
		if !io.isTerminal {
			fmt.Fprintln(io.out)
		}
		if events == nil {
			// etcd did not answer: read again after the request timeout.
			select {
			case <-ctx.Done():
				return code
			case <-time.After(c.timeout):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return code
		case wr, ok := <-events:
			if !ok || wr.Err() != nil {
				// The watch ended (etcd lost its leader, or compaction):
				// read again and start a new watch from that reading.
				stopWatch()
				events = nil
				continue
			}
		}
		// Coalesce events that are already waiting into one redraw.
		for drained := false; !drained; {
			select {
			case wr, ok := <-events:
				if !ok || wr.Err() != nil {
					stopWatch()
					events = nil
					drained = true
				}
			default:
				drained = true
			}
		}
	}
}

// statusInput is everything status reads: the raw records, before any
// judgement. computeStatus turns it into a Status.
type statusInput struct {
	Cluster     string
	Links       []string        // configured links in order; empty without a configuration
	ConfigNodes map[string]bool // configured node names -> witness
	Endpoints   []endpointInfo
	Members     []etcdMemberInfo // etcd members (MemberList)
	MembersErr  string
	Election    string // agent leader: value of the oldest election key; "" none
	Verdict     *cluster.VerdictRecord
	Applied     map[string]cluster.AppliedRecord
	Overrides   map[string]linkstate.Override
	Records     map[string]cluster.NodeRecord
	Undecodable []string // "key: error" for records that are not valid JSON
	Revision    int64    // etcd revision of the reading
}

type endpointInfo struct {
	Endpoint string
	MemberID uint64
	LeaderID uint64
	Version  string
	Alarms   []string
	Err      string
}

type etcdMemberInfo struct {
	ID   uint64
	Name string
}

// gatherRecords reads the cluster's records in one transaction (a
// consistent snapshot).
func gatherRecords(ctx context.Context, c *conn) (statusInput, error) {
	in := statusInput{
		Cluster:   c.name,
		Applied:   map[string]cluster.AppliedRecord{},
		Overrides: map[string]linkstate.Override{},
		Records:   map[string]cluster.NodeRecord{},
	}
	if c.cfg != nil {
		in.Links = c.knownLinks(nil)
		in.ConfigNodes = map[string]bool{}
		for n, spec := range c.cfg.Nodes {
			in.ConfigNodes[n] = spec.Witness
		}
	}
	rctx, cancel := c.request(ctx)
	defer cancel()
	k := c.keys
	resp, err := c.cli.Txn(rctx).Then(
		clientv3.OpGet(k.Verdict()),
		clientv3.OpGet(k.AppliedPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(k.OverridePrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(k.NodesPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(k.Election(), append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...),
	).Commit()
	if err != nil {
		return in, c.requestErr("read cluster records", err)
	}
	in.Revision = resp.Header.Revision
	undecodable := func(key []byte, err error) {
		in.Undecodable = append(in.Undecodable, fmt.Sprintf("%s: %v", key, err))
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		var v cluster.VerdictRecord
		if err := json.Unmarshal(kvs[0].Value, &v); err != nil {
			undecodable(kvs[0].Key, err)
		} else {
			in.Verdict = &v
		}
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		var a cluster.AppliedRecord
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			undecodable(kv.Key, err)
			continue
		}
		in.Applied[strings.TrimPrefix(string(kv.Key), k.AppliedPrefix())] = a
	}
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		var o linkstate.Override
		if err := json.Unmarshal(kv.Value, &o); err != nil {
			undecodable(kv.Key, err)
			continue
		}
		in.Overrides[strings.TrimPrefix(string(kv.Key), k.OverridePrefix())] = o
	}
	for _, kv := range resp.Responses[3].GetResponseRange().Kvs {
		var r cluster.NodeRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			undecodable(kv.Key, err)
			continue
		}
		in.Records[strings.TrimPrefix(string(kv.Key), k.NodesPrefix())] = r
	}
	if kvs := resp.Responses[4].GetResponseRange().Kvs; len(kvs) > 0 {
		in.Election = string(kvs[0].Value)
	}
	return in, nil
}

// gatherStatus reads the cluster's records (gatherRecords) and asks etcd
// for its members and every endpoint for its status.
func gatherStatus(ctx context.Context, c *conn) (statusInput, error) {
	in, err := gatherRecords(ctx, c)
	if err != nil {
		return in, err
	}
	rctx, cancel := c.request(ctx)
	defer cancel()
	ml, err := c.cli.MemberList(rctx)
	if err != nil {
		in.MembersErr = err.Error()
	} else {
		for _, m := range ml.Members {
			in.Members = append(in.Members, etcdMemberInfo{ID: m.ID, Name: m.Name})
		}
	}
	for _, ep := range c.endpoints {
		ei := endpointInfo{Endpoint: ep}
		sctx, scancel := c.request(ctx)
		s, err := c.cli.Status(sctx, ep)
		scancel()
		if err != nil {
			ei.Err = c.requestErr("status", err).Error()
		} else {
			ei.MemberID, ei.LeaderID, ei.Version = s.Header.MemberId, s.Leader, s.Version
			ei.Alarms = s.Errors
		}
		in.Endpoints = append(in.Endpoints, ei)
	}
	return in, nil
}

// Status is what gwctl status shows; its JSON form is documented in the
// command's help text and is stable.
type Status struct {
	Cluster   string           `json:"cluster"`
	Time      time.Time        `json:"time"`
	Health    string           `json:"health"`
	Error     string           `json:"error,omitempty"`
	Etcd      EtcdStatus       `json:"etcd"`
	Leader    *LeaderStatus    `json:"leader"`
	Verdict   *VerdictStatus   `json:"verdict"`
	Nodes     []NodeStatus     `json:"nodes"`
	Links     []LinkStatus     `json:"links"`
	Overrides []OverrideStatus `json:"overrides"`
	Warnings  []string         `json:"warnings"`
}

// EtcdStatus is etcd's health as gwctl sees it.
type EtcdStatus struct {
	Members   []EtcdMember   `json:"members"`
	Leader    string         `json:"leader"` // raft leader's member name; "" when none is known
	Endpoints []EtcdEndpoint `json:"endpoints"`
}

// EtcdMember is one etcd cluster member.
type EtcdMember struct {
	Name   string `json:"name"`
	Leader bool   `json:"leader"`
}

// EtcdEndpoint is one endpoint's answer to a status request.
type EtcdEndpoint struct {
	Endpoint string   `json:"endpoint"`
	OK       bool     `json:"ok"`
	Member   string   `json:"member,omitempty"`
	Version  string   `json:"version,omitempty"`
	Alarms   []string `json:"alarms,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// LeaderStatus is the agent leader.
type LeaderStatus struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since,omitzero"`
}

// VerdictStatus summarises the current verdict.
type VerdictStatus struct {
	Seq        uint64                 `json:"seq"`
	Time       time.Time              `json:"time,omitzero"`
	Leader     string                 `json:"leader"`
	ConfigHash string                 `json:"config_hash"`
	AuditSeq   uint64                 `json:"audit_seq"`
	Active     []string               `json:"active"`
	AllDown    bool                   `json:"all_down"`
	Impaired   []linkstate.Impairment `json:"impaired"`
}

// NodeStatus is one node of the cluster.
type NodeStatus struct {
	Name       string                 `json:"name"`
	Gossip     string                 `json:"gossip"` // alive | suspect | dead | left | gone | unknown
	Record     bool                   `json:"record"` // has a nodes/ record
	Witness    bool                   `json:"witness"`
	Leader     bool                   `json:"leader"`
	CARP       []cluster.CARPStatus   `json:"carp"`
	Mode       string                 `json:"mode"`
	Version    string                 `json:"version"`
	ConfigHash string                 `json:"config_hash"`
	ReportedAt time.Time              `json:"reported_at,omitzero"`
	Applied    *cluster.AppliedRecord `json:"applied"`
}

// alive reports whether the node runs and takes part in verdicts: it has a
// record and its peers do not report it dead or gone.
func (n NodeStatus) alive() bool {
	return n.Record && (n.Gossip == cluster.MemberAlive || n.Gossip == cluster.MemberSuspect)
}

// LinkStatus is one link's verdict and every node's view of it.
type LinkStatus struct {
	Name       string           `json:"name"`
	State      linkstate.State  `json:"state"`
	Observed   linkstate.State  `json:"observed"`
	Since      time.Time        `json:"since,omitzero"`
	Reason     string           `json:"reason"`
	Active     bool             `json:"active"`
	Suppressed bool             `json:"suppressed"`
	Override   linkstate.Action `json:"override"`
	Views      []LinkView       `json:"views"`
}

// LinkView is one node's view of one link.
type LinkView struct {
	Node   string          `json:"node"`
	State  linkstate.State `json:"state"`
	Loss   float64         `json:"loss"`   // percent
	RTTms  float64         `json:"rtt_ms"` // milliseconds
	Since  time.Time       `json:"since,omitzero"`
	LastOK time.Time       `json:"last_ok,omitzero"`
}

// OverrideStatus is an operator override and whether it has expired.
type OverrideStatus struct {
	linkstate.Override
	Expired bool `json:"expired"`
}

func (s Status) exitCode() int {
	switch s.Health {
	case healthHealthy:
		return exitOK
	case healthDegraded:
		return exitFail
	}
	return exitUsage
}

func unreachableStatus(name string, err error, now time.Time) Status {
	return Status{
		Cluster: name, Time: now, Health: healthUnreachable, Error: err.Error(),
		Etcd:  EtcdStatus{Members: []EtcdMember{}, Endpoints: []EtcdEndpoint{}},
		Nodes: []NodeStatus{}, Links: []LinkStatus{}, Overrides: []OverrideStatus{}, Warnings: []string{},
	}
}

// gossipRank orders gossip states from best to worst; a member's state is
// the worst any peer reports.
var gossipRank = map[string]int{cluster.MemberAlive: 0, cluster.MemberSuspect: 1, cluster.MemberDead: 2, cluster.MemberLeft: 3}

// computeStatus judges the records: it is pure (now is the reading's time)
// so that tests can check every warning.
func computeStatus(in statusInput, now time.Time) Status {
	s := Status{
		Cluster: in.Cluster, Time: now,
		Nodes: []NodeStatus{}, Links: []LinkStatus{}, Overrides: []OverrideStatus{}, Warnings: []string{},
	}
	warn := func(format string, a ...any) { s.Warnings = append(s.Warnings, fmt.Sprintf(format, a...)) }

	// etcd
	names := map[uint64]string{}
	for _, m := range in.Members {
		names[m.ID] = m.Name
	}
	memberName := func(id uint64) string {
		if n, ok := names[id]; ok && n != "" {
			return n
		}
		return fmt.Sprintf("%x", id)
	}
	s.Etcd = EtcdStatus{Members: []EtcdMember{}, Endpoints: []EtcdEndpoint{}}
	var raftLeader uint64
	for _, e := range in.Endpoints {
		ee := EtcdEndpoint{Endpoint: e.Endpoint, OK: e.Err == "", Error: e.Err, Version: e.Version, Alarms: e.Alarms}
		if ee.OK {
			ee.Member = memberName(e.MemberID)
			if e.LeaderID != 0 {
				raftLeader = e.LeaderID
			}
		}
		s.Etcd.Endpoints = append(s.Etcd.Endpoints, ee)
		if !ee.OK {
			warn("etcd endpoint %s does not answer: %s", e.Endpoint, e.Err)
		}
		for _, a := range e.Alarms {
			warn("etcd member %s reports: %s", ee.Member, a)
		}
	}
	for _, m := range in.Members {
		s.Etcd.Members = append(s.Etcd.Members, EtcdMember{Name: m.Name, Leader: m.ID == raftLeader})
	}
	slices.SortFunc(s.Etcd.Members, func(a, b EtcdMember) int { return cmp.Compare(a.Name, b.Name) })
	if raftLeader != 0 {
		s.Etcd.Leader = memberName(raftLeader)
	} else {
		warn("etcd has no raft leader")
	}
	if in.MembersErr != "" {
		warn("etcd member list: %s", in.MembersErr)
	}
	for _, u := range in.Undecodable {
		warn("record is not valid JSON: %s", u)
	}

	// agent leader
	if in.Election != "" {
		s.Leader = &LeaderStatus{Node: in.Election}
		if r, ok := in.Records[in.Election]; ok {
			s.Leader.Since = r.LeaderSince
		}
	} else {
		warn("no agent leader: the election under %s is empty", cluster.NewKeys(in.Cluster).Election())
	}

	// verdict
	v := in.Verdict
	if v != nil {
		s.Verdict = &VerdictStatus{
			Seq: v.Seq, Time: v.Time, Leader: v.Leader, ConfigHash: v.ConfigHash, AuditSeq: v.AuditSeq,
			Active: orEmpty(v.Active), AllDown: v.AllDown, Impaired: orEmpty(v.Impaired),
		}
	} else {
		warn("no verdict in etcd yet")
	}

	// nodes: every name any record or the configuration knows
	nodeSet := map[string]bool{}
	for n := range in.ConfigNodes {
		nodeSet[n] = true
	}
	for n := range in.Applied {
		nodeSet[n] = true
	}
	for n, r := range in.Records {
		nodeSet[n] = true
		for _, m := range r.Members {
			nodeSet[m.Name] = true
		}
	}
	peers := sortedKeys(in.Records)
	for _, n := range sortedKeys(nodeSet) {
		r, hasRecord := in.Records[n]
		ns := NodeStatus{Name: n, Record: hasRecord, CARP: []cluster.CARPStatus{}, Witness: in.ConfigNodes[n]}
		// Gossip state: the worst that any other node reports.
		worst, seenBy := "", ""
		for _, peer := range peers {
			if peer == n {
				continue
			}
			for _, m := range in.Records[peer].Members {
				if m.Name != n {
					continue
				}
				if rank, ok := gossipRank[m.State]; ok && (worst == "" || rank > gossipRank[worst]) {
					worst, seenBy = m.State, peer
				}
			}
		}
		switch {
		case worst != "":
			ns.Gossip = worst
		case hasRecord:
			ns.Gossip = cluster.MemberAlive // it reports itself and no peer says otherwise
		default:
			ns.Gossip = "gone"
		}
		if hasRecord {
			ns.Witness = ns.Witness || r.Witness
			ns.Leader = r.Leader
			ns.CARP = orEmpty(r.CARP)
			ns.Mode = r.Mode
			ns.Version = r.Version
			ns.ConfigHash = r.ConfigHash
			ns.ReportedAt = r.Time
		}
		if a, ok := in.Applied[n]; ok {
			ns.Applied = &a
		}
		s.Nodes = append(s.Nodes, ns)

		switch {
		case !hasRecord && seenBy != "":
			warn("node %s has no nodes/ record (agent stopped, or its etcd lease expired); gossip: %s (reported by %s)", n, ns.Gossip, seenBy)
		case !hasRecord:
			warn("node %s has no nodes/ record (agent stopped, or its etcd lease expired)", n)
		case ns.Gossip == "suspect" || ns.Gossip == "dead" || ns.Gossip == "left":
			warn("node %s is %s in gossip (reported by %s)", n, ns.Gossip, seenBy)
		}
		if hasRecord && (r.Mode == cluster.ModeHold || r.Mode == cluster.ModeGossip) {
			what := "holds the applied rules"
			if r.Mode == cluster.ModeGossip {
				what = "decides on its gossip view"
			}
			warn("node %s is in %s mode: it cannot reach etcd and %s", n, r.Mode, what)
		}
		if ns.Witness {
			continue
		}
		switch {
		case ns.Applied == nil && hasRecord:
			warn("node %s has applied no verdict yet (no applied/ record)", n)
		case ns.Applied != nil && ns.Applied.Error != "":
			warn("node %s failed to apply verdict seq %d: %s", n, ns.Applied.Seq, ns.Applied.Error)
		case ns.Applied != nil && v != nil && ns.Applied.Seq < v.Seq && ns.alive():
			warn("node %s is behind: it applied verdict seq %d, the verdict is at seq %d", n, ns.Applied.Seq, v.Seq)
		}
	}

	// ruleset hash mismatch between nodes at the same seq
	bySeq := map[uint64][]string{}
	for _, ns := range s.Nodes {
		if ns.Applied != nil && !ns.Witness {
			bySeq[ns.Applied.Seq] = append(bySeq[ns.Applied.Seq], ns.Name)
		}
	}
	for _, seq := range slices.Sorted(maps.Keys(bySeq)) {
		nodes := bySeq[seq]
		hashes := map[string]bool{}
		var parts []string
		for _, n := range nodes {
			h := in.Applied[n].Hash
			hashes[h] = true
			parts = append(parts, n+" "+shortHash(h))
		}
		if len(hashes) > 1 {
			warn("ruleset hash mismatch at verdict seq %d: %s", seq, strings.Join(parts, ", "))
		}
	}
	// config hash drift
	cfgHashes := map[string]bool{}
	var cfgParts []string
	for _, ns := range s.Nodes {
		if ns.Record && ns.ConfigHash != "" {
			cfgHashes[ns.ConfigHash] = true
			cfgParts = append(cfgParts, ns.Name+" "+shortHash(ns.ConfigHash))
		}
	}
	if len(cfgHashes) > 1 {
		warn("config hash differs between nodes: %s", strings.Join(cfgParts, ", "))
	}
	if v != nil {
		for _, im := range v.Impaired {
			warn("node %s is impaired on %s: it sees the link down while the verdict says up", im.Node, im.Link)
		}
	}

	// links
	linkNames := in.Links
	if len(linkNames) == 0 {
		set := map[string]bool{}
		if v != nil {
			for l := range v.Links {
				set[l] = true
			}
		}
		for _, r := range in.Records {
			for l := range r.Observations {
				set[l] = true
			}
		}
		for l := range in.Overrides {
			set[l] = true
		}
		linkNames = slices.Sorted(maps.Keys(set))
	}
	for _, l := range linkNames {
		ls := LinkStatus{Name: l, Views: []LinkView{}}
		if v != nil {
			if lv, ok := v.Links[l]; ok {
				ls.State, ls.Observed, ls.Since, ls.Reason = lv.State, lv.Observed, lv.Since, lv.Reason
				ls.Suppressed, ls.Override = lv.Suppressed, lv.Override
			}
			ls.Active = slices.Contains(v.Active, l)
		}
		for _, ns := range s.Nodes {
			if !ns.Record || ns.Witness {
				continue
			}
			view := LinkView{Node: ns.Name}
			if o, ok := in.Records[ns.Name].Observations[l]; ok {
				view.State, view.Loss, view.Since, view.LastOK = o.State, o.Loss, o.Since, o.LastOK
				view.RTTms = float64(o.RTT) / float64(time.Millisecond)
			}
			ls.Views = append(ls.Views, view)
		}
		s.Links = append(s.Links, ls)
		if v != nil && ls.State == linkstate.Down && ls.Override != linkstate.Drain {
			warn("link %s is down: %s", l, ls.Reason)
		}
	}
	if v != nil && v.AllDown {
		warn("every link is down; the all_down policy decides which links carry traffic")
	}

	// overrides
	for _, l := range slices.Sorted(maps.Keys(in.Overrides)) {
		o := in.Overrides[l]
		ovs := OverrideStatus{Override: o, Expired: !o.Until.IsZero() && !now.Before(o.Until)}
		s.Overrides = append(s.Overrides, ovs)
		if ovs.Expired {
			warn("override on %s expired at %s but is still in etcd (is an agent leader running?)", l, fmtTime(o.Until, now))
		}
	}

	s.Health = healthHealthy
	if len(s.Warnings) > 0 {
		s.Health = healthDegraded
	}
	return s
}

func printStatusJSON(w io.Writer, s Status, _ time.Time) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		// Every field is a plain value; this cannot fail for valid states.
		fmt.Fprintf(w, "{\"health\": %q, \"error\": %q}\n", healthUnreachable, err.Error())
		return
	}
	w.Write(append(b, '\n'))
}

func printStatusText(w io.Writer, s Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintf(tw, "cluster\t%s (%s)\n", s.Cluster, s.Health)

	var mem []string
	for _, m := range s.Etcd.Members {
		mem = append(mem, m.Name)
	}
	ok := 0
	for _, e := range s.Etcd.Endpoints {
		if e.OK {
			ok++
		}
	}
	leader := s.Etcd.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(tw, "etcd\t%d member(s) %s, raft leader %s; %d/%d endpoint(s) answer\n",
		len(s.Etcd.Members), strings.Join(mem, ","), leader, ok, len(s.Etcd.Endpoints))
	if s.Leader != nil {
		since := ""
		if !s.Leader.Since.IsZero() {
			since = fmt.Sprintf(" since %s (%s)", fmtTime(s.Leader.Since, now), ago(s.Leader.Since, now))
		}
		fmt.Fprintf(tw, "leader\t%s%s\n", s.Leader.Node, since)
	} else {
		fmt.Fprintf(tw, "leader\tnone\n")
	}
	if v := s.Verdict; v != nil {
		fmt.Fprintf(tw, "verdict\tseq %d at %s by %s; active %s\n", v.Seq, fmtTime(v.Time, now), dash(v.Leader), dash(strings.Join(v.Active, ",")))
	} else {
		fmt.Fprintf(tw, "verdict\tnone\n")
	}

	if len(s.Nodes) > 0 {
		fmt.Fprintf(tw, "\nNODE\tGOSSIP\tROLE\tMODE\tAPPLIED\tRULESET\tCONFIG\tREPORTED\n")
		for _, n := range s.Nodes {
			name := n.Name
			if n.Leader {
				name += "*"
			}
			if n.Witness {
				name += " (witness)"
			}
			var carp []string
			for _, c := range n.CARP {
				carp = append(carp, c.Interface+"="+c.State)
			}
			applied, hash := "-", "-"
			if n.Applied != nil {
				applied = fmt.Sprint(n.Applied.Seq)
				if n.Applied.Error != "" {
					applied += "!"
				}
				hash = shortHash(n.Applied.Hash)
			}
			reported := "-"
			if !n.ReportedAt.IsZero() {
				reported = ago(n.ReportedAt, now)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, n.Gossip, dash(strings.Join(carp, ",")),
				dash(n.Mode), applied, hash, dash(shortHash(n.ConfigHash)), reported)
		}
	}

	if len(s.Links) > 0 {
		fmt.Fprintf(tw, "\nLINK\tVERDICT\tSINCE\tOVERRIDE\tREASON\n")
		for _, l := range s.Links {
			state := l.State.String()
			if l.Active {
				state += "*"
			}
			if l.Suppressed {
				state += " (damped)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Name, state, fmtTime(l.Since, now), dash(string(l.Override)), dash(l.Reason))
		}
		fmt.Fprintf(tw, "\nLINK\tNODE\tSTATE\tLOSS\tRTT\tLAST OK\n")
		for _, l := range s.Links {
			for _, vw := range l.Views {
				lastOK := "-"
				if !vw.LastOK.IsZero() {
					lastOK = ago(vw.LastOK, now)
				}
				loss := fmtLoss(vw.Loss)
				if vw.State == linkstate.Unknown {
					loss = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", l.Name, vw.Node, vw.State, loss, fmtRTT(vw.RTTms), lastOK)
			}
		}
	}

	if len(s.Overrides) > 0 {
		fmt.Fprintf(tw, "\nOVERRIDE\tACTION\tBY\tSINCE\tUNTIL\tREASON\n")
		for _, o := range s.Overrides {
			until := "-"
			if !o.Until.IsZero() {
				until = fmtTime(o.Until, now)
				if o.Expired {
					until += " (expired)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.Link, o.Action, dash(o.By), fmtTime(o.Since, now), until, dash(o.Reason))
		}
	}
	tw.Flush()
	if len(s.Warnings) > 0 {
		fmt.Fprintln(w)
	}
	for _, wn := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
}

// timeLayout is how gwctl prints times, in the location of its clock.
const timeLayout = "2006-01-02 15:04:05"

func fmtTime(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(now.Location()).Format(timeLayout)
}

// ago says how long before now t was, to a precision a person reads at a
// glance ("4s ago", "2m10s ago", "3h12m ago", "2d4h ago"; "in 1h48m").
func ago(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in " + roughDuration(-d)
	}
	return roughDuration(d) + " ago"
}

func roughDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		days := int(d / (24 * time.Hour))
		return fmt.Sprintf("%dd%dh", days, int((d-time.Duration(days)*24*time.Hour)/time.Hour))
	}
}

func fmtLoss(p float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", p), ".0") + "%" }

func fmtRTT(ms float64) string {
	if ms == 0 {
		return "-"
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", ms), ".0") + "ms"
}

// shortHash is the first 12 hex digits of a hash, as people compare them.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
