package config

import (
	"net/netip"
	"time"
)

// Config is the whole cluster's configuration: one file shared by every node.
// Field tags give the YAML key; every key is documented in gwstated.yaml(5)
// and in the README's configuration reference.
type Config struct {
	Node string `mapstructure:"node" json:"node,omitempty"`
	// Witness is set by gwstated --witness: this node runs as a witness
	// whatever nodes.<name>.witness says. Not a file key, not in Hash.
	Witness bool     `mapstructure:"-" json:"-"`
	Cluster Cluster  `mapstructure:"cluster" json:"cluster"`
	LAN     LAN      `mapstructure:"lan" json:"lan"`
	Links   []Link   `mapstructure:"links" json:"links"`
	Sticky  []Sticky `mapstructure:"sticky" json:"sticky"`
	AllDown string   `mapstructure:"all_down" json:"all_down"`
	Damping Damping  `mapstructure:"damping" json:"damping"`
	// Dataplane is where verdicts go: pf (OpenBSD, pf.backend), nft
	// (Linux nftables and policy routing) or dir (files; lab and dry runs).
	Dataplane string              `mapstructure:"dataplane" json:"dataplane"`
	PF        PF                  `mapstructure:"pf" json:"pf"`
	NFT       NFT                 `mapstructure:"nft" json:"nft"`
	CARP      CARP                `mapstructure:"carp" json:"carp"`
	VRRP      VRRP                `mapstructure:"vrrp" json:"vrrp"`
	Nodes     map[string]NodeSpec `mapstructure:"nodes" json:"nodes"`
	Metrics   Metrics             `mapstructure:"metrics" json:"metrics"`
}

// Cluster is how the nodes find each other and agree.
type Cluster struct {
	Name       string `mapstructure:"name" json:"name"`                 // etcd prefix /gwstated/<name>/
	Decide     string `mapstructure:"decide" json:"decide"`             // any | majority | all
	OnEtcdLoss string `mapstructure:"on_etcd_loss" json:"on_etcd_loss"` // hold | gossip
	Gossip     Gossip `mapstructure:"gossip" json:"gossip"`
	Etcd       Etcd   `mapstructure:"etcd" json:"etcd"`
}

// Gossip configures memberlist.
type Gossip struct {
	Bind             string        `mapstructure:"bind" json:"bind"`                             // host:port
	Advertise        string        `mapstructure:"advertise" json:"advertise,omitempty"`         // host:port, when bind is a wildcard
	Join             []string      `mapstructure:"join" json:"join"`                             // host:port of peers
	KeyFile          string        `mapstructure:"key_file" json:"key_file"`                     // 16, 24 or 32 byte key, base64
	Insecure         bool          `mapstructure:"insecure" json:"insecure"`                     // run unencrypted (refused unless set)
	ProbeInterval    time.Duration `mapstructure:"probe_interval" json:"probe_interval"`         // memberlist failure-detector probe
	ProbeTimeout     time.Duration `mapstructure:"probe_timeout" json:"probe_timeout"`           //
	SuspicionMult    int           `mapstructure:"suspicion_mult" json:"suspicion_mult"`         //
	GossipInterval   time.Duration `mapstructure:"gossip_interval" json:"gossip_interval"`       //
	PushPullInterval time.Duration `mapstructure:"push_pull_interval" json:"push_pull_interval"` //
}

// Etcd configures the etcd client and, optionally, an embedded member.
type Etcd struct {
	Endpoints      []string      `mapstructure:"endpoints" json:"endpoints"`
	DialTimeout    time.Duration `mapstructure:"dial_timeout" json:"dial_timeout"`
	RequestTimeout time.Duration `mapstructure:"request_timeout" json:"request_timeout"`
	SessionTTL     time.Duration `mapstructure:"session_ttl" json:"session_ttl"` // whole seconds, >= 1s
	Username       string        `mapstructure:"username" json:"username,omitempty"`
	PasswordFile   string        `mapstructure:"password_file" json:"password_file,omitempty"`
	TLS            TLS           `mapstructure:"tls" json:"tls"`
	AuditRetention int           `mapstructure:"audit_retention" json:"audit_retention"` // audit records kept
	Embed          *Embed        `mapstructure:"embed" json:"embed,omitempty"`
}

// TLS holds PEM file paths for the etcd client (and embedded member).
type TLS struct {
	CA   string `mapstructure:"ca" json:"ca,omitempty"`
	Cert string `mapstructure:"cert" json:"cert,omitempty"`
	Key  string `mapstructure:"key" json:"key,omitempty"`
}

// Embed runs an etcd member inside the agent. Per-node values (peer_url,
// client_url) normally come from nodes.<name>.etcd.
type Embed struct {
	DataDir        string            `mapstructure:"data_dir" json:"data_dir"`
	PeerURL        string            `mapstructure:"peer_url" json:"peer_url,omitempty"`
	ClientURL      string            `mapstructure:"client_url" json:"client_url,omitempty"`
	InitialCluster map[string]string `mapstructure:"initial_cluster" json:"initial_cluster"` // member name -> peer URL
	ClusterState   string            `mapstructure:"cluster_state" json:"cluster_state"`     // new | existing
}

// LAN is the inside network whose traffic is balanced.
type LAN struct {
	Interface string       `mapstructure:"interface" json:"interface"`
	Network   netip.Prefix `mapstructure:"network" json:"network"`
}

// Link is one uplink.
type Link struct {
	Name      string     `mapstructure:"name" json:"name"`
	Interface string     `mapstructure:"interface" json:"interface"`
	Gateway   netip.Addr `mapstructure:"gateway" json:"gateway"`
	Tier      int        `mapstructure:"tier" json:"tier"`
	NatTo     netip.Addr `mapstructure:"nat_to" json:"nat_to,omitzero"` // e.g. the CARP address; default (interface)
	Probe     Probe      `mapstructure:"probe" json:"probe"`
}

// Probe configures how a link is probed. Zero fields take the profile's value.
type Probe struct {
	Profile  string        `mapstructure:"profile" json:"profile"` // default | fast | bfd
	Targets  []netip.Addr  `mapstructure:"targets" json:"targets"` // default: the gateway
	Need     int           `mapstructure:"need" json:"need"`       // targets that must be up for the link to be up
	Interval time.Duration `mapstructure:"interval" json:"interval"`
	Timeout  time.Duration `mapstructure:"timeout" json:"timeout"`
	Fall     int           `mapstructure:"fall" json:"fall"` // consecutive misses -> target down
	Rise     int           `mapstructure:"rise" json:"rise"` // consecutive answers -> target up
	Window   int           `mapstructure:"window" json:"window"`
	LossDown Percent       `mapstructure:"loss_down" json:"loss_down"` // window loss at or above -> down
	LossUp   Percent       `mapstructure:"loss_up" json:"loss_up"`     // window loss must be below to come up
	RTTDown  time.Duration `mapstructure:"rtt_down" json:"rtt_down"`   // mean window RTT above -> down; 0 off
}

// Percent is a percentage 0..100, written 40% or 40 in YAML.
type Percent float64

// Sticky is a class of traffic pinned to one link (the recipe's "applications" anchor).
type Sticky struct {
	Name  string `mapstructure:"name" json:"name"`
	Proto string `mapstructure:"proto" json:"proto"` // tcp | udp
	Ports []int  `mapstructure:"ports" json:"ports"`
	Link  string `mapstructure:"link" json:"link,omitempty"` // preferred link; default: first up link of the lowest tier
}

// Damping is flap damping; see linkstate.Damping.
type Damping struct {
	Penalty  float64       `mapstructure:"penalty" json:"penalty"` // 0 disables
	HalfLife time.Duration `mapstructure:"half_life" json:"half_life"`
	Suppress float64       `mapstructure:"suppress" json:"suppress"`
	Reuse    float64       `mapstructure:"reuse" json:"reuse"`
}

// PF configures how rules reach pf.
type PF struct {
	Backend            string        `mapstructure:"backend" json:"backend"` // pfctl | dir
	Syntax             string        `mapstructure:"syntax" json:"syntax"`   // openbsd | legacy
	Dir                string        `mapstructure:"dir" json:"dir"`         // dir backend output; pfctl backend temp files
	KillStates         bool          `mapstructure:"kill_states" json:"kill_states"`
	Rtable             int           `mapstructure:"rtable" json:"rtable"` // routing table for the default route
	DriftInterval      time.Duration `mapstructure:"drift_interval" json:"drift_interval"`
	LoadbalanceAnchor  string        `mapstructure:"loadbalance_anchor" json:"loadbalance_anchor"`
	ApplicationsAnchor string        `mapstructure:"applications_anchor" json:"applications_anchor"`
	NATPrefix          string        `mapstructure:"nat_prefix" json:"nat_prefix"`   // nat anchor = prefix + link name
	PassPrefix         string        `mapstructure:"pass_prefix" json:"pass_prefix"` // pass anchor = prefix + link name
}

// CARP configures demotion of this node's CARP group when it is impaired.
type CARP struct {
	Interfaces []string `mapstructure:"interfaces" json:"interfaces"` // carp interfaces to report, e.g. carp0
	Group      string   `mapstructure:"group" json:"group"`           // interface group to demote (default carp)
	Demote     int      `mapstructure:"demote" json:"demote"`         // 0 disables demotion
}

// NFT configures the Linux data plane (dataplane: nft): the nftables
// table gwstated owns and the marks, routing tables and ip rule priorities
// it uses, link i (0-based, config order) taking base + i.
type NFT struct {
	Table        string `mapstructure:"table" json:"table"`                 // the table is "inet <table>"
	MarkBase     int    `mapstructure:"mark_base" json:"mark_base"`         // link i's conntrack and packet mark
	TableBase    int    `mapstructure:"table_base" json:"table_base"`       // link i's routing table
	RulePriority int    `mapstructure:"rule_priority" json:"rule_priority"` // first ip rule priority of 1 + 2 x links
	KillStates   bool   `mapstructure:"kill_states" json:"kill_states"`     // delete a dead link's conntrack entries
}

// VRRP ties gwstated to keepalived on a Linux pair: an impaired node writes
// its demotion into track_file (keepalived's vrrp_track_file), and the node
// is MASTER while one of addresses is configured on it.
type VRRP struct {
	TrackFile string       `mapstructure:"track_file" json:"track_file"`
	Addresses []netip.Addr `mapstructure:"addresses" json:"addresses"`
	Demote    int          `mapstructure:"demote" json:"demote"` // written when impaired; 0 disables
}

// NodeSpec holds what differs between the nodes sharing the file.
type NodeSpec struct {
	ProbeSource map[string]netip.Addr `mapstructure:"probe_source" json:"probe_source,omitempty"` // link -> source address
	Gossip      NodeGossip            `mapstructure:"gossip" json:"gossip"`
	Etcd        NodeEtcd              `mapstructure:"etcd" json:"etcd"`
	Witness     bool                  `mapstructure:"witness" json:"witness,omitempty"` // etcd + gossip only
	VRRP        NodeVRRP              `mapstructure:"vrrp" json:"vrrp"`
}

// NodeVRRP overrides vrrp for one node.
type NodeVRRP struct {
	// TrackFile replaces vrrp.track_file on this node: nodes that share a
	// file system (containers, the lab's namespaces) need one each.
	TrackFile string `mapstructure:"track_file" json:"track_file,omitempty"`
}

// NodeGossip overrides cluster.gossip for one node.
type NodeGossip struct {
	Bind      string `mapstructure:"bind" json:"bind,omitempty"`
	Advertise string `mapstructure:"advertise" json:"advertise,omitempty"`
}

// NodeEtcd overrides cluster.etcd.embed for one node.
type NodeEtcd struct {
	DataDir   string `mapstructure:"data_dir" json:"data_dir,omitempty"`
	PeerURL   string `mapstructure:"peer_url" json:"peer_url,omitempty"`
	ClientURL string `mapstructure:"client_url" json:"client_url,omitempty"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Listen string `mapstructure:"listen" json:"listen"` // host:port; empty disables
}
