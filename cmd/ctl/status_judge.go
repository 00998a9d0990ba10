package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gwstated/cluster"
	"gwstated/linkstate"
)

// gossipRank orders gossip states from best to worst; a member's state is
// the worst any peer reports.
var gossipRank = map[cluster.MemberState]int{cluster.MemberAlive: 0, cluster.MemberSuspect: 1, cluster.MemberDead: 2, cluster.MemberLeft: 3}

// judgement builds a Status from the records, one section at a time; each
// section adds its rows and its warnings, in the order status prints them.
type judgement struct {
	in  statusInput
	now time.Time
	s   Status
}

func (j *judgement) warn(format string, a ...any) {
	j.s.Warnings = append(j.s.Warnings, fmt.Sprintf(format, a...))
}

// computeStatus judges the records: it is pure (now is the reading's time)
// so that tests can check every warning.
func computeStatus(in statusInput, now time.Time) Status {
	j := &judgement{in: in, now: now, s: Status{
		Cluster: in.Cluster, Time: now,
		Nodes: []NodeStatus{}, Links: []LinkStatus{}, Overrides: []OverrideStatus{}, Warnings: []string{},
	}}
	j.etcd()
	j.leader()
	j.verdict()
	j.nodes()
	j.rulesetHashes()
	j.configHashes()
	j.impaired()
	j.links()
	j.overrides()
	j.foreign()
	j.s.Health = healthHealthy
	if len(j.s.Warnings) > 0 {
		j.s.Health = healthDegraded
	}
	return j.s
}

// etcd: members, raft leader, each endpoint's answer, records that do not
// decode.
func (j *judgement) etcd() {
	in := j.in
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
	j.s.Etcd = EtcdStatus{Members: []EtcdMember{}, Endpoints: []EtcdEndpoint{}}
	var raftLeader uint64
	for _, e := range in.Endpoints {
		ee := EtcdEndpoint{Endpoint: e.Endpoint, OK: e.Err == "", Error: e.Err, Version: e.Version, Alarms: e.Alarms}
		if ee.OK {
			ee.Member = memberName(e.MemberID)
			if e.LeaderID != 0 {
				raftLeader = e.LeaderID
			}
		}
		j.s.Etcd.Endpoints = append(j.s.Etcd.Endpoints, ee)
		if !ee.OK {
			j.warn("etcd endpoint %s does not answer: %s", e.Endpoint, e.Err)
		}
		for _, a := range e.Alarms {
			j.warn("etcd member %s reports: %s", ee.Member, a)
		}
	}
	for _, m := range in.Members {
		j.s.Etcd.Members = append(j.s.Etcd.Members, EtcdMember{Name: m.Name, Leader: m.ID == raftLeader})
	}
	slices.SortFunc(j.s.Etcd.Members, func(a, b EtcdMember) int { return cmp.Compare(a.Name, b.Name) })
	if raftLeader != 0 {
		j.s.Etcd.Leader = memberName(raftLeader)
	} else {
		j.warn("etcd has no raft leader")
	}
	if in.MembersErr != "" {
		j.warn("etcd member list: %s", in.MembersErr)
	}
	for _, u := range in.Undecodable {
		j.warn("record is not valid JSON: %s", u)
	}
}

// leader: the owner of the election key.
func (j *judgement) leader() {
	if j.in.Election == "" {
		j.warn("no agent leader: the election under %s is empty", cluster.NewKeys(j.in.Cluster).Election())
		return
	}
	j.s.Leader = &LeaderStatus{Node: j.in.Election}
	if r, ok := j.in.Nodes[j.in.Election]; ok {
		j.s.Leader.Since = r.LeaderSince
	}
}

// verdict: the current verdict's summary.
func (j *judgement) verdict() {
	v := j.in.Verdict
	if v == nil {
		j.warn("no verdict in etcd yet")
		return
	}
	j.s.Verdict = &VerdictStatus{
		Seq: v.Seq, Time: v.Time, Leader: v.Leader, ConfigHash: v.ConfigHash, AuditSeq: v.AuditSeq,
		Active: orEmpty(v.Active), AllDown: v.AllDown, Impaired: orEmpty(v.Impaired),
	}
}

// nodes: every name any record or the configuration knows, with its
// gossip state, mode and what it applied.
func (j *judgement) nodes() {
	in := j.in
	nodeSet := map[string]bool{}
	for n := range in.ConfigNodes {
		nodeSet[n] = true
	}
	for n := range in.Applied {
		nodeSet[n] = true
	}
	for n, r := range in.Nodes {
		nodeSet[n] = true
		for _, m := range r.Members {
			nodeSet[m.Name] = true
		}
	}
	for _, n := range sortedKeys(nodeSet) {
		j.node(n)
	}
}

// gossipOf is the worst gossip state any other node reports for n, and
// who reports it ("" when no peer knows n).
func (j *judgement) gossipOf(n string) (worst cluster.MemberState, seenBy string) {
	for _, peer := range sortedKeys(j.in.Nodes) {
		if peer == n {
			continue
		}
		for _, m := range j.in.Nodes[peer].Members {
			if m.Name != n {
				continue
			}
			if rank, ok := gossipRank[m.State]; ok && (worst == "" || rank > gossipRank[worst]) {
				worst, seenBy = m.State, peer
			}
		}
	}
	return worst, seenBy
}

func (j *judgement) node(n string) {
	in := j.in
	r, hasRecord := in.Nodes[n]
	ns := NodeStatus{Name: n, Record: hasRecord, CARP: []cluster.CARPStatus{}, Witness: in.ConfigNodes[n]}
	worst, seenBy := j.gossipOf(n)
	switch {
	case worst != "":
		ns.Gossip = string(worst)
	case hasRecord:
		ns.Gossip = string(cluster.MemberAlive) // it reports itself and no peer says otherwise
	default:
		ns.Gossip = "gone"
	}
	if hasRecord {
		ns.Witness = ns.Witness || r.Witness
		ns.Leader = r.Leader
		ns.CARP = orEmpty(r.CARP)
		ns.Mode = string(r.Mode)
		ns.Version = r.Version
		ns.ConfigHash = r.ConfigHash
		ns.ReportedAt = r.Time
	}
	if a, ok := in.Applied[n]; ok {
		ns.Applied = &a
	}
	j.s.Nodes = append(j.s.Nodes, ns)

	switch {
	case !hasRecord && seenBy != "":
		j.warn("node %s has no nodes/ record (agent stopped, or its etcd lease expired); gossip: %s (reported by %s)", n, ns.Gossip, seenBy)
	case !hasRecord:
		j.warn("node %s has no nodes/ record (agent stopped, or its etcd lease expired)", n)
	case slices.Contains([]cluster.MemberState{cluster.MemberSuspect, cluster.MemberDead, cluster.MemberLeft}, cluster.MemberState(ns.Gossip)):
		j.warn("node %s is %s in gossip (reported by %s)", n, ns.Gossip, seenBy)
	}
	if hasRecord && (r.Mode == cluster.ModeHold || r.Mode == cluster.ModeGossip) {
		what := "holds the applied rules"
		if r.Mode == cluster.ModeGossip {
			what = "decides on its gossip view"
		}
		j.warn("node %s is in %s mode: it cannot reach etcd and %s", n, r.Mode, what)
	}
	if ns.Witness {
		return
	}
	v := in.Verdict
	switch {
	case ns.Applied == nil && hasRecord:
		j.warn("node %s has applied no verdict yet (no applied/ record)", n)
	case ns.Applied != nil && ns.Applied.Error != "":
		j.warn("node %s failed to apply verdict seq %d: %s", n, ns.Applied.Seq, ns.Applied.Error)
	case ns.Applied != nil && v != nil && ns.Applied.Seq < v.Seq && ns.alive():
		j.warn("node %s is behind: it applied verdict seq %d, the verdict is at seq %d", n, ns.Applied.Seq, v.Seq)
	}
	if ns.Applied != nil && ns.Applied.StateError != "" {
		j.warn("node %s cannot save its local state file (rules applied; a restart without etcd would start without them): %s", n, ns.Applied.StateError)
	}
}

// rulesetHashes: nodes at the same verdict seq must hold the same rules.
func (j *judgement) rulesetHashes() {
	bySeq := map[uint64][]string{}
	for _, ns := range j.s.Nodes {
		if ns.Applied != nil && !ns.Witness {
			bySeq[ns.Applied.Seq] = append(bySeq[ns.Applied.Seq], ns.Name)
		}
	}
	for _, seq := range slices.Sorted(maps.Keys(bySeq)) {
		hashes := map[string]bool{}
		var parts []string
		for _, n := range bySeq[seq] {
			h := j.in.Applied[n].Hash
			hashes[h] = true
			parts = append(parts, n+" "+cluster.ShortHash(h))
		}
		if len(hashes) > 1 {
			j.warn("ruleset hash mismatch at verdict seq %d: %s", seq, strings.Join(parts, ", "))
		}
	}
}

// configHashes: every node should run the same configuration.
func (j *judgement) configHashes() {
	cfgHashes := map[string]bool{}
	var parts []string
	for _, ns := range j.s.Nodes {
		if ns.Record && ns.ConfigHash != "" {
			cfgHashes[ns.ConfigHash] = true
			parts = append(parts, ns.Name+" "+cluster.ShortHash(ns.ConfigHash))
		}
	}
	if len(cfgHashes) > 1 {
		j.warn("config hash differs between nodes: %s", strings.Join(parts, ", "))
	}
}

// impaired: nodes that see a link down while the verdict says up.
func (j *judgement) impaired() {
	if v := j.in.Verdict; v != nil {
		for _, im := range v.Impaired {
			j.warn("node %s is impaired on %s: it sees the link down while the verdict says up", im.Node, im.Link)
		}
	}
}

// linkNames: the configuration's links in order, else every link any
// record names, sorted.
func (j *judgement) linkNames() []string {
	in := j.in
	if len(in.Links) > 0 {
		return in.Links
	}
	set := map[string]bool{}
	if in.Verdict != nil {
		for l := range in.Verdict.Links {
			set[l] = true
		}
	}
	for _, r := range in.Nodes {
		for l := range r.Observations {
			set[l] = true
		}
	}
	for l := range in.Overrides {
		set[l] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// links: each link's verdict and every node's view of it.
func (j *judgement) links() {
	v := j.in.Verdict
	for _, l := range j.linkNames() {
		ls := LinkStatus{Name: l, Views: []LinkView{}}
		if v != nil {
			if lv, ok := v.Links[l]; ok {
				ls.State, ls.Observed, ls.Since, ls.Reason = lv.State, lv.Observed, lv.Since, lv.Reason
				ls.Suppressed, ls.Override = lv.Suppressed, lv.Override
			}
			ls.Active = slices.Contains(v.Active, l)
		}
		for _, ns := range j.s.Nodes {
			if !ns.Record || ns.Witness {
				continue
			}
			view := LinkView{Node: ns.Name}
			if o, ok := j.in.Nodes[ns.Name].Observations[l]; ok {
				view.State, view.Loss, view.Since, view.LastOK = o.State, o.Loss, o.Since, o.LastOK
				view.RTTms = float64(o.RTT) / float64(time.Millisecond)
			}
			ls.Views = append(ls.Views, view)
		}
		j.s.Links = append(j.s.Links, ls)
		if v != nil && ls.State == linkstate.Down && ls.Override != linkstate.Drain {
			j.warn("link %s is down: %s", l, ls.Reason)
		}
	}
	if v != nil && v.AllDown {
		j.warn("every link is down; the all_down policy decides which links carry traffic")
	}
}

// overrides: operator overrides, and those past their expiry.
func (j *judgement) overrides() {
	for _, l := range slices.Sorted(maps.Keys(j.in.Overrides)) {
		o := j.in.Overrides[l]
		ovs := OverrideStatus{Override: o, Expired: !o.Until.IsZero() && !j.now.Before(o.Until)}
		j.s.Overrides = append(j.s.Overrides, ovs)
		if ovs.Expired {
			j.warn("override on %s expired at %s but is still in etcd (is an agent leader running?)", l, fmtTime(o.Until, j.now))
		}
	}
}
