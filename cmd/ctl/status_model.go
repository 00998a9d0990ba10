package main

import (
	"gwstated/cluster"
	"gwstated/linkstate"
	"time"
)

// statusInput is everything status reads: the raw records, before any
// judgement. computeStatus turns it into a Status.
type statusInput struct {
	Cluster     string
	Links       []string        // configured links in order; empty without a configuration
	ConfigNodes map[string]bool // configured node names -> witness
	Endpoints   []endpointInfo
	Members     []etcdMemberInfo // etcd members (MemberList)
	MembersErr  string
	cluster.Snapshot
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
	g := cluster.MemberState(n.Gossip)
	return n.Record && (g == cluster.MemberAlive || g == cluster.MemberSuspect)
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
