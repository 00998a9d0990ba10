package lab

import (
	"bytes"
	_ "embed"
	"fmt"
	"gwstated/config"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"text/template"
)

// clusterTemplate is the lab's cluster configuration: the demo's "embedded
// default", filled in by WriteConfig.
//
//go:embed cluster.yaml.tmpl
var clusterTemplate string

// EtcdMode chooses where the cluster's etcd runs.
type EtcdMode int

const (
	// EtcdSeparate runs etcd as its own processes (labetcd), one member in
	// each of fw1, fw2 and the witness namespace on the sync segment; the
	// agents are only its clients.
	EtcdSeparate EtcdMode = iota
	// EtcdEmbedded sets cluster.etcd.embed: each agent (fw1, fw2, and the
	// witness run as `gwstated --witness`) runs a member in-process.
	EtcdEmbedded
)

func (m EtcdMode) String() string {
	if m == EtcdEmbedded {
		return "embedded"
	}
	return "separate"
}

// ClusterOptions configure StartCluster. Zero values take the defaults.
type ClusterOptions struct {
	Bin        Binaries
	Dir        string // work directory: config, key, state dirs, logs (required)
	Etcd       EtcdMode
	Profile    string // probe profile of every link: default | fast
	Decide     string // cluster.decide (default any)
	OnEtcdLoss string // cluster.on_etcd_loss (default hold)
	// Damping replaces the default flap damping; NoDamping turns it off
	// (penalty 0), for measurements that cut a link many times.
	Damping   *config.Damping
	NoDamping bool
	LogLevel  string // agents' --log-level (default info)
	// Dataplane is "" (the firewalls run --dry-run: the dir backend),
	// DataplanePF (the pfctl backend against the OpenBSD emulator; see
	// pfdataplane.go) or DataplaneNFT (the Linux data plane for real; see
	// linuxcluster.go).
	Dataplane string
	// Rise sets probe.rise of the named links (the answers in a row that
	// bring a target up), e.g. to make one link settle later than another.
	Rise map[string]int
	// NATTo sets links[].nat_to of the named links (ctsync.go: the
	// WAN-side VRRP addresses).
	NATTo map[string]netip.Addr
	// Log receives one line per harness action (start, kill, ...); nil
	// discards them.
	Log io.Writer
}

type tmplNode struct {
	Name, Sync string
	Witness    bool
	Sources    []struct{ Link, Addr string }
	TrackFile  string // nft: nodes.<n>.vrrp.track_file (the nodes share one file system)
}

type tmplLink struct {
	Name, Interface, Gateway string
	Rise                     int    // 0: the profile's
	NatTo                    string // "": none
}

type tmplData struct {
	Name, Decide, OnEtcdLoss, KeyFile, PFDir, LAN, Internet, Profile, Metrics string
	PFBackend, DriftInterval                                                  string
	Embed                                                                     bool
	NFT                                                                       bool   // dataplane: nft (linuxcluster.go)
	TrackFile, VRRPAddress                                                    string // with NFT
	EmbedDataDir                                                              string
	Nodes                                                                     []tmplNode
	Links                                                                     []tmplLink
	Damping                                                                   struct{ Penalty, HalfLife, Suppress, Reuse string }
}

// WriteConfig writes the lab cluster's configuration for l into path
// (from the embedded template cluster.yaml.tmpl) and returns its text.
func WriteConfig(l *Lab, path, keyFile, workDir string, opt ClusterOptions) (string, error) {
	d := tmplData{
		Name: "lab", Decide: opt.Decide, OnEtcdLoss: opt.OnEtcdLoss, KeyFile: keyFile,
		PFDir: filepath.Join(workDir, "pf"), LAN: LANPrefix.String(), Internet: Internet4.String(),
		Profile: opt.Profile, Metrics: "0.0.0.0:" + metricsPort,
		Embed: opt.Etcd == EtcdEmbedded, EmbedDataDir: filepath.Join(workDir, "etcd"),
		PFBackend: "dir", DriftInterval: "30s",
	}
	if opt.Dataplane == DataplanePF {
		d.PFBackend, d.DriftInterval = "pfctl", "1s"
	}
	if d.Decide == "" {
		d.Decide = "any"
	}
	if d.OnEtcdLoss == "" {
		d.OnEtcdLoss = "hold"
	}
	if d.Profile == "" {
		d.Profile = config.DefaultProfile
	}
	if opt.Dataplane == DataplaneNFT {
		d.NFT, d.TrackFile, d.VRRPAddress = true, filepath.Join(workDir, "vrrp-track"), LANGateway.String()
	}
	dmp := config.Default().Damping
	if opt.Damping != nil {
		dmp = *opt.Damping
	}
	if opt.NoDamping {
		dmp.Penalty = 0
	}
	d.Damping.Penalty = fmt.Sprint(dmp.Penalty)
	d.Damping.HalfLife = dmp.HalfLife.String()
	d.Damping.Suppress = fmt.Sprint(dmp.Suppress)
	d.Damping.Reuse = fmt.Sprint(dmp.Reuse)
	for _, s := range l.ISPs() {
		lk := tmplLink{Name: s.Name, Interface: l.Uplink(FW1, s.Name).Interface, Gateway: s.Gateway4.String(), Rise: opt.Rise[s.Name]}
		if a, ok := opt.NATTo[s.Name]; ok {
			lk.NatTo = a.String()
		}
		d.Links = append(d.Links, lk)
	}
	for _, fw := range []string{FW1, FW2} {
		n := tmplNode{Name: fw, Sync: l.SyncAddr(fw).String()}
		if d.NFT {
			n.TrackFile = filepath.Join(workDir, fw, "vrrp-track") // Cluster.TrackFile
		}
		for _, s := range l.ISPs() {
			n.Sources = append(n.Sources, struct{ Link, Addr string }{s.Name, l.Uplink(fw, s.Name).Addr4.String()})
		}
		d.Nodes = append(d.Nodes, n)
	}
	d.Nodes = append(d.Nodes, tmplNode{Name: Witness, Sync: l.SyncAddr(Witness).String(), Witness: true})
	t, err := template.New("cluster.yaml").Parse(clusterTemplate)
	if err != nil {
		return "", fmt.Errorf("lab: config template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return "", fmt.Errorf("lab: config template: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	return buf.String(), nil
}
