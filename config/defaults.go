package config

import (
	"bytes"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultProfile is the probe profile of a link that names none.
const DefaultProfile = "default"

// Profiles are the named probe profiles. A link's probe names one
// (probe.profile, default "default"); every probe field the link leaves at
// zero takes the profile's value. Treat as read-only.
var Profiles = map[string]Probe{
	// default notices a dead link in under a second. The fall-th request
	// after the last answer, unanswered for RTO — srtt + 4·rttvar of the
	// answers, at least interval/2, at most timeout — takes a target
	// down, so a cut is detected (fall-1)·interval + RTO to
	// fall·interval + RTO after it happened: 0.75–0.85 s on a steady path;
	// rise × interval = 0.5 s of answers bring it back. At 10% random
	// loss a run of 8 misses starts about once in 10^8 probes (≈0.009
	// false downs per target per day), and the 100-probe window (10 s)
	// needs 40% loss to take a target down. The recipe pinged once every
	// 10 s and flipped on one lost packet. See docs/probing.md.
	DefaultProfile: {
		Interval: 100 * time.Millisecond,
		Timeout:  400 * time.Millisecond, // an answer within it counts; the most RTO can be
		Fall:     8,
		Rise:     5,
		Window:   100, // 10 s of probes for loss and RTT
		LossDown: 40,  // 40% loss over the window takes a target down
		LossUp:   20,  // and it must be under 20% to come back
		RTTDown:  0,   // RTT does not decide
	},
	// fast is for links where half a second matters: 9 misses × 50 ms +
	// RTO (25 ms on a steady path) notice a dead link in 0.43–0.48 s.
	// Many short probes rather than a few long ones: at 10% random loss,
	// 9 misses in a row happen about once in 10^9 probes (≈0.002 false
	// downs per target per day) where 100 ms × 5 gave ~8 per day.
	"fast": {
		Interval: 50 * time.Millisecond,
		Timeout:  250 * time.Millisecond,
		Fall:     9,
		Rise:     6,  // 300 ms of answers
		Window:   80, // 4 s of probes
		LossDown: 40,
		LossUp:   20,
	},
	// bfd detects a dead link about as fast as BFD does (50 ms × 3) while
	// riding out random loss: 16 misses × 15 ms + RTO (7.5 ms on a steady
	// path) is at most 0.25 s after the last answer, whatever the RTT; at
	// 10% loss 16 misses in a row start about once in 10^16 probes (≈5e-10
	// false downs per target per day), at 20% once in 10^11 (≈3e-5 per
	// day). 67 probes a second per target; the 500-probe window (7.5 s)
	// keeps the loss rule as calm at 20% loss as default's at 10%. See
	// docs/probing.md for why 15 ms × 16 rather than 20 ms × 12.
	"bfd": {
		Interval: 15 * time.Millisecond,
		Timeout:  100 * time.Millisecond,
		Fall:     16,
		Rise:     12,  // 180 ms of answers
		Window:   500, // 7.5 s of probes
		LossDown: 40,
		LossUp:   20,
	},
}

// Default returns the configuration every file starts from: Parse decodes
// the file on top of it, so a key that is absent keeps the value here and a
// key that is present wins, even when it is zero (kill_states: false,
// carp.demote: 0, metrics.listen: "" turn those features off). Links,
// sticky classes and nodes have no defaults at this level; ApplyDefaults
// fills their zero fields.
func Default() Config {
	return Config{
		Cluster: Cluster{
			Name:       "gwstated", // etcd prefix /gwstated/gwstated/
			Decide:     "any",      // a link is up while one alive node sees it up
			OnEtcdLoss: "hold",     // keep the applied rules while etcd is away
			Gossip: Gossip{
				Bind: "0.0.0.0:7946", // memberlist's usual port, every address
				// memberlist timings for two firewalls on one LAN: a dead
				// peer is suspected after ~0.5 s and declared dead after
				// suspicion_mult × log(n) probe intervals.
				ProbeInterval:    500 * time.Millisecond,
				ProbeTimeout:     250 * time.Millisecond,
				SuspicionMult:    3,
				GossipInterval:   100 * time.Millisecond,
				PushPullInterval: 15 * time.Second, // full state sync
			},
			Etcd: Etcd{
				DialTimeout:    2 * time.Second,
				RequestTimeout: 2 * time.Second, // per read or write
				SessionTTL:     3 * time.Second, // leader and node keys expire 3 s after a node dies
				AuditRetention: 10000,           // audit records kept (oldest deleted first)
			},
		},
		AllDown: "all", // fail open: with every link down, try them all
		Damping: Damping{
			Penalty:  1000,             // added per down→up
			HalfLife: 60 * time.Second, // penalty halves every minute
			Suppress: 3000,             // above this a link is held down (the 3rd quick flap)
			Reuse:    750,              // and released once the penalty decays below this
		},
		PF: PF{
			Backend:            "pfctl",
			Syntax:             "openbsd", // OpenBSD 6.9+: route-to takes gateway addresses
			Dir:                "/var/db/gwstated/anchors",
			KillStates:         true, // kill a dead link's states so connections move at once
			Rtable:             0,
			DriftInterval:      30 * time.Second, // re-read pf and repair anchors edited by hand
			LoadbalanceAnchor:  "loadbalance",    // names from the ifstated recipe's pf.conf
			ApplicationsAnchor: "applications",
			NATPrefix:          "nat-",
			PassPrefix:         "pass-",
		},
		Dataplane: "pf", // pf.backend picks pfctl or dir
		NFT: NFT{
			Table:        "gwstated", // nft list table inet gwstated
			MarkBase:     0x100,      // marks 0x100, 0x101, ...
			TableBase:    100,        // routing tables 100, 101, ...
			RulePriority: 100,        // ip rules at 100 .. 100 + 2 x links
			KillStates:   true,       // drop a dead link's conntrack entries so flows move at once
		},
		VRRP: VRRP{
			TrackFile: "/run/gwstated/vrrp-track", // keepalived vrrp_track_file
			Demote:    50,                         // keepalived lowers the priority by this when impaired
		},
		CARP: CARP{
			Group:  "carp", // every carp interface is in group carp by default
			Demote: 50,     // carpdemote step when this node is impaired
		},
		Metrics: Metrics{Listen: "127.0.0.1:9707"},
	}
}

// ApplyDefaults fills the zero fields of list items and of the embedded
// etcd member: a link's tier (1), its probe fields from its profile, its
// probe targets (the gateway) and need (1); embed.cluster_state (new).
// Parse calls it; code that builds a Config from Default calls it after
// adding links. It never changes a non-zero field.
func (c *Config) ApplyDefaults() {
	for i := range c.Links {
		l := &c.Links[i]
		if l.Tier == 0 {
			l.Tier = 1
		}
		p := &l.Probe
		if p.Profile == "" {
			p.Profile = DefaultProfile
		}
		prof, ok := Profiles[p.Profile]
		if !ok {
			// Validate reports the unknown profile; fill from the default
			// so that it is the only problem reported for this probe.
			prof = Profiles[DefaultProfile]
		}
		setIfZero(&p.Interval, prof.Interval)
		setIfZero(&p.Timeout, prof.Timeout)
		setIfZero(&p.Fall, prof.Fall)
		setIfZero(&p.Rise, prof.Rise)
		setIfZero(&p.Window, prof.Window)
		setIfZero(&p.LossDown, prof.LossDown)
		setIfZero(&p.LossUp, prof.LossUp)
		setIfZero(&p.RTTDown, prof.RTTDown)
		if len(p.Targets) == 0 && l.Gateway.IsValid() {
			p.Targets = []netip.Addr{l.Gateway}
		}
		setIfZero(&p.Need, 1)
	}
	if e := c.Cluster.Etcd.Embed; e != nil {
		setIfZero(&e.ClusterState, "new")
	}
}

func setIfZero[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Marshal writes the configuration as YAML that a person can read and that
// Parse reads back to an equal Config: every key in declaration order,
// durations as 250ms or 15s, percentages as 40%, addresses as text. Keys
// that are empty and optional (advertise, nat_to, embed, ...) are left out,
// and so is node: the file is the cluster's, and the node is chosen where it
// is read (Parse(Marshal(c), c.Node) equals c). This is what
// `gwctl check --print-defaults` prints.
func Marshal(c *Config) ([]byte, error) {
	cp := *c
	cp.Node = ""
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{toNode(reflect.ValueOf(cp))}}
	doc.HeadComment = "gwstated configuration with every default filled in"
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

func toNode(v reflect.Value) *yaml.Node {
	switch v.Type() {
	case durationType:
		return scalar("!!str", formatDuration(time.Duration(v.Int())))
	case percentType:
		return scalar("!!str", Percent(v.Float()).String())
	case addrType:
		return scalar("!!str", v.Interface().(netip.Addr).String())
	case prefixType:
		return scalar("!!str", v.Interface().(netip.Prefix).String())
	}
	switch v.Kind() {
	case reflect.Pointer:
		return toNode(v.Elem())
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if key == "" || key == "-" {
				continue
			}
			fv := v.Field(i)
			_, jsonOpts, _ := strings.Cut(f.Tag.Get("json"), ",")
			optional := strings.Contains(jsonOpts, "omitempty") || strings.Contains(jsonOpts, "omitzero")
			if fv.IsZero() && (optional || fv.Kind() == reflect.Pointer) {
				continue
			}
			m.Content = append(m.Content, scalar("!!str", key), toNode(fv))
		}
		return m
	case reflect.Slice:
		s := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			e := toNode(v.Index(i))
			if e.Kind == yaml.ScalarNode {
				s.Style = yaml.FlowStyle
			}
			s.Content = append(s.Content, e)
		}
		if v.Len() == 0 {
			s.Style = yaml.FlowStyle
		}
		return s
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			m.Content = append(m.Content, scalar("!!str", k.String()), toNode(v.MapIndex(k)))
		}
		if v.Len() == 0 {
			m.Style = yaml.FlowStyle
		}
		return m
	case reflect.String:
		return scalar("!!str", v.String())
	case reflect.Bool:
		return scalar("", strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar("", strconv.FormatInt(v.Int(), 10))
	case reflect.Float32, reflect.Float64:
		return scalar("", strconv.FormatFloat(v.Float(), 'f', -1, 64))
	}
	return scalar("!!str", v.String())
}

// formatDuration writes a duration the way a person would: 250ms, 15s, 2m,
// 1h (Go's form below a microsecond).
func formatDuration(d time.Duration) string {
	units := []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}, {time.Microsecond, "us"}}
	if d == 0 {
		return "0s"
	}
	for _, u := range units {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return d.String()
}
