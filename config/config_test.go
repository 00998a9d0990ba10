package config

import (
	"bytes"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gwstated/linkstate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testHost is the host name the tests run under; no testdata file has a
// node called that.
const testHost = "testhost"

func parseFile(t *testing.T, path string, opts ...Option) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	node := ""
	// A first line "# --node NAME" passes NAME as the node argument.
	if first, _, _ := strings.Cut(string(data), "\n"); strings.HasPrefix(first, "# --node ") {
		node = strings.TrimPrefix(first, "# --node ")
	}
	return Parse(data, node, append([]Option{withHostname(testHost)}, opts...)...)
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	return files
}

func TestValidFiles(t *testing.T) {
	for _, f := range glob(t, "testdata/valid-*.yaml") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := parseFile(t, f)
			if err != nil {
				t.Fatalf("want valid, got:\n%v", err)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate after Parse: %v", err)
			}
			assertRoundTrip(t, cfg)
		})
	}
}

// TestExamples parses every shipped example, as every node it names and
// offline (gwctl check on an admin's machine).
func TestExamples(t *testing.T) {
	for _, f := range glob(t, "../deploy/examples/*.yaml") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := parseFile(t, f, Offline())
			if err != nil {
				t.Fatalf("offline: %v", err)
			}
			for n := range cfg.Nodes {
				data, _ := os.ReadFile(f)
				if _, err := Parse(data, n); err != nil {
					t.Errorf("as node %s: %v", n, err)
				}
			}
			assertRoundTrip(t, cfg)
		})
	}
}

// TestPFFAQExample pins the example that stands for the ifstated recipe.
func TestPFFAQExample(t *testing.T) {
	cfg, err := Load("../deploy/examples/pf-faq.yaml", "fw1")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, ifname, gw, src string
	}{
		{"isp1", "fxp0", "198.51.100.100", "198.51.100.199"},
		{"isp2", "fxp1", "203.0.113.200", "203.0.113.220"},
	}
	if len(cfg.Links) != len(want) {
		t.Fatalf("links: got %d, want %d", len(cfg.Links), len(want))
	}
	for i, w := range want {
		l := cfg.Links[i]
		if l.Name != w.name || l.Interface != w.ifname || l.Gateway.String() != w.gw {
			t.Errorf("links[%d] = %s %s %s, want %s %s %s", i, l.Name, l.Interface, l.Gateway, w.name, w.ifname, w.gw)
		}
		if got := cfg.ProbeSource(w.name).String(); got != w.src {
			t.Errorf("probe source of %s = %s, want %s", w.name, got, w.src)
		}
	}
	if cfg.LAN.Interface != "dc0" || cfg.LAN.Network.String() != "192.168.0.0/24" {
		t.Errorf("lan = %+v", cfg.LAN)
	}
	wantSticky := []Sticky{{Name: "https", Proto: "tcp", Ports: []int{443}, Link: "isp1"}}
	if !reflect.DeepEqual(cfg.Sticky, wantSticky) {
		t.Errorf("sticky = %+v, want %+v", cfg.Sticky, wantSticky)
	}
	if cfg.PF.Backend != "pfctl" {
		t.Errorf("pf.backend = %q", cfg.PF.Backend)
	}
}

// TestInvalidFiles: each invalid-X.yaml must produce exactly the problems
// listed in invalid-X.err, one per line.
func TestInvalidFiles(t *testing.T) {
	for _, f := range glob(t, "testdata/invalid-*.yaml") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			wantText, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
			if err != nil {
				t.Fatalf("every invalid file needs its .err file: %v", err)
			}
			var want []string
			for _, l := range strings.Split(string(wantText), "\n") {
				if l != "" {
					want = append(want, l)
				}
			}
			cfg, err := parseFile(t, f)
			if err == nil {
				t.Fatalf("want invalid, got a config for node %q", cfg.Node)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want *ValidationError, got %T", err)
			}
			got := strings.Split(err.Error(), "\n")
			for _, w := range want {
				if !slices.Contains(got, w) {
					t.Errorf("missing problem:\n  %s", w)
				}
			}
			if len(ve.Problems) != len(want) {
				t.Errorf("got %d problems, want %d:\n%s", len(ve.Problems), len(want), err)
			}
		})
	}
}

func assertRoundTrip(t *testing.T, cfg *Config) {
	t.Helper()
	out, err := Marshal(cfg)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := Parse(out, "", withHostname(cfg.Node), Offline())
	if err != nil {
		t.Fatalf("Parse(Marshal(cfg)): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("Parse(Marshal(cfg)) differs from cfg\n got: %+v\nwant: %+v\nYAML:\n%s", back, cfg, out)
	}
	if back.Hash() != cfg.Hash() {
		t.Errorf("hash changed in the round trip")
	}
}

func TestMarshalIsReadable(t *testing.T) {
	cfg, err := parseFile(t, "testdata/valid-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"    bind: 0.0.0.0:7946\n",
		"    push_pull_interval: 15s\n",
		"  network: 10.1.0.0/16\n",
		"      interval: 100ms\n",
		"      loss_down: 40%\n",
		"      targets: [192.0.2.1]\n",
		"  half_life: 1m\n",
		"  kill_states: true\n",
		"  listen: 127.0.0.1:9707\n",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("Marshal output lacks %q:\n%s", want, out)
		}
	}
	for _, absent := range []string{"node", "nat_to", "embed", "advertise", "witness"} {
		if bytes.Contains(out, []byte(absent+":")) {
			t.Errorf("Marshal writes unset optional key %s:\n%s", absent, out)
		}
	}
}

func TestDefaultsFill(t *testing.T) {
	cfg, err := parseFile(t, "testdata/valid-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Links[0].Probe
	want := Profiles[DefaultProfile]
	want.Profile = DefaultProfile
	want.Targets = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	want.Need = 1
	if !reflect.DeepEqual(p, want) {
		t.Errorf("probe = %+v\nwant %+v", p, want)
	}
	if cfg.Links[0].Tier != 1 || cfg.Cluster.Name != "gwstated" || cfg.AllDown != "all" ||
		cfg.Cluster.Etcd.SessionTTL != 3*time.Second || !cfg.PF.KillStates || cfg.CARP.Demote != 50 {
		t.Errorf("defaults not filled: %+v", cfg)
	}

	// Fields set in the file win over the profile, the rest come from it.
	cfg, err = parseFile(t, "testdata/valid-fast.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p = cfg.Links[0].Probe
	fast := Profiles["fast"]
	if p.Rise != 8 || p.Interval != fast.Interval || p.Fall != fast.Fall || p.Need != 2 {
		t.Errorf("fast probe = %+v", p)
	}

	// A key that is present wins even when it is zero.
	cfg, err = parseFile(t, "testdata/valid-tiers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PF.KillStates || cfg.Metrics.Listen != "" {
		t.Errorf("explicit false/empty replaced by a default: kill_states %v, listen %q", cfg.PF.KillStates, cfg.Metrics.Listen)
	}
	if cfg.Links[1].Probe.LossDown != 12.5 || cfg.Links[1].Probe.LossUp != 5 {
		t.Errorf("percentages: %v %v", cfg.Links[1].Probe.LossDown, cfg.Links[1].Probe.LossUp)
	}
}

func TestNodeSelection(t *testing.T) {
	base := `
cluster: {gossip: {insecure: true}, etcd: {endpoints: ["http://127.0.0.1:2379"]}}
lan: {interface: em1, network: 10.0.0.0/24}
links: [{name: a, interface: em0, gateway: 10.0.0.1}]
nodes: {fw1: {}, fw2: {witness: true}}
`
	cases := []struct {
		name     string
		file     string // prepended to base
		arg      string
		host     string
		offline  bool
		want     string // selected node, or "" for an error
		wantErrs string
	}{
		{name: "argument wins", file: "node: fw1\n", arg: "fw2", host: "fw1", want: "fw2"},
		{name: "file beats host name", file: "node: fw2\n", host: "fw1", want: "fw2"},
		{name: "short host name", host: "FW1.example.org", want: "fw1"},
		{name: "typo in --node", arg: "fw3", host: "fw1", wantErrs: `node: "fw3" is not one of nodes (fw1, fw2)`},
		{name: "typo in --node offline", arg: "fw3", host: "fw1", offline: true, wantErrs: `node: "fw3" is not one of nodes (fw1, fw2)`},
		{name: "typo in node:", file: "node: fw3\n", host: "fw1", wantErrs: `node: "fw3" is not one of nodes (fw1, fw2)`},
		{name: "unknown host", host: "laptop", wantErrs: `node: "laptop" is not one of nodes (fw1, fw2)`},
		{name: "unknown host offline", host: "laptop", offline: true, want: "laptop"},
		{name: "hostile --node", arg: "fw1;reboot", wantErrs: `node: "fw1;reboot" ` + msgName},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := []Option{withHostname(c.host)}
			if c.offline {
				opts = append(opts, Offline())
			}
			cfg, err := Parse([]byte(c.file+base), c.arg, opts...)
			if c.wantErrs != "" {
				if err == nil || err.Error() != c.wantErrs {
					t.Fatalf("err = %v, want %s", err, c.wantErrs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Node != c.want {
				t.Errorf("node = %q, want %q", cfg.Node, c.want)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	cfg, err := parseFile(t, "testdata/valid-carp-natto.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Node != "fw2" || cfg.IsWitness() {
		t.Errorf("node %q witness %v", cfg.Node, cfg.IsWitness())
	}
	if got := cfg.ProbeSource("isp2"); got != netip.MustParseAddr("203.0.113.12") {
		t.Errorf("ProbeSource(isp2) = %v", got)
	}
	if got := cfg.ProbeSource("nope"); got.IsValid() {
		t.Errorf("ProbeSource(nope) = %v, want zero", got)
	}
	if l, ok := cfg.Link("isp2"); !ok || l.Interface != "em1" {
		t.Errorf("Link(isp2) = %+v, %v", l, ok)
	}
	if _, ok := cfg.Link("isp3"); ok {
		t.Error("Link(isp3) found")
	}
	if got := cfg.TrackFile(); got != cfg.VRRP.TrackFile || got != "/run/gwstated/vrrp-track" {
		t.Errorf("TrackFile() without an override = %q", got)
	}
	spec := cfg.Nodes["fw2"]
	spec.VRRP.TrackFile = "/run/fw2/track"
	cfg.Nodes["fw2"] = spec
	if got := cfg.TrackFile(); got != "/run/fw2/track" || cfg.VRRP.TrackFile != "/run/gwstated/vrrp-track" {
		t.Errorf("TrackFile() = %q (vrrp.track_file %q), want fw2's override", got, cfg.VRRP.TrackFile)
	}
	if g := cfg.Gossip(); g.Bind != "10.0.0.2:7946" || cfg.Cluster.Gossip.Bind != "0.0.0.0:7946" {
		t.Errorf("gossip bind = %q (cluster %q)", g.Bind, cfg.Cluster.Gossip.Bind)
	}
	want := linkstate.Policy{
		Links:   []linkstate.LinkPolicy{{Name: "isp1", Tier: 1, Settle: 1200 * time.Millisecond}, {Name: "isp2", Tier: 1, Settle: 1200 * time.Millisecond}}, // 8 × 100ms + 400ms
		Decide:  linkstate.Any,
		AllDown: linkstate.AllDownAll,
		Damping: linkstate.Damping{Penalty: 0, HalfLife: time.Minute, Suppress: 3000, Reuse: 750},
	}
	if got := cfg.Policy(); !reflect.DeepEqual(got, want) {
		t.Errorf("Policy = %+v\nwant %+v", got, want)
	}
	if cfg.Embed() != nil || cfg.EtcdEndpoints()[2] != "https://10.0.0.3:2379" {
		t.Errorf("etcd: embed %v endpoints %v", cfg.Embed(), cfg.EtcdEndpoints())
	}

	w, err := parseFile(t, "testdata/valid-carp-natto.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w.Node = "witness"
	if !w.IsWitness() || w.Self().ProbeSource != nil {
		t.Errorf("witness: %+v", w.Self())
	}

	tiers, err := parseFile(t, "testdata/valid-tiers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := tiers.Policy()
	if p.Decide != linkstate.Majority || p.AllDown != linkstate.AllDownKeep ||
		!reflect.DeepEqual(p.Links, []linkstate.LinkPolicy{{Name: "fibre-a", Tier: 1, Settle: 1200 * time.Millisecond},
			{Name: "fibre_b", Tier: 1, Settle: 1200 * time.Millisecond}, {Name: "lte", Tier: 2, Settle: 5 * time.Second}}) {
		t.Errorf("tiers policy = %+v", p)
	}
}

func TestEmbedAccessors(t *testing.T) {
	data, err := os.ReadFile("testdata/valid-embed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, "fw2")
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Embed()
	if e == nil || e.PeerURL != "http://10.0.0.2:2380" || e.ClientURL != "http://10.0.0.2:2379" || e.ClusterState != "new" {
		t.Fatalf("Embed() = %+v", e)
	}
	if cfg.Cluster.Etcd.Embed.PeerURL != "" {
		t.Error("Embed() changed the shared config")
	}
	want := []string{"http://10.0.0.2:2379", "http://10.0.0.1:2379", "http://10.0.0.3:2379"}
	if got := cfg.EtcdEndpoints(); !reflect.DeepEqual(got, want) {
		t.Errorf("EtcdEndpoints = %v, want %v", got, want)
	}
	if _, err := Parse(data, "fw9"); err == nil {
		t.Error("unknown node accepted")
	}
}

// TestHash: every node of a file has the same hash; any change changes it.
func TestHash(t *testing.T) {
	data, err := os.ReadFile("testdata/valid-carp-natto.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse(data, "fw1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(data, "fw2")
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Error("hash depends on the node")
	}
	if len(a.Hash()) != 64 {
		t.Errorf("hash %q is not hex sha256", a.Hash())
	}
	c, err := Parse(bytes.Replace(data, []byte("demote: 100"), []byte("demote: 99"), 1), "fw1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash() == a.Hash() {
		t.Error("hash did not change with carp.demote")
	}
	// The same settings written differently hash the same.
	d, err := Parse(bytes.Replace(data, []byte("damping: {penalty: 0}"), []byte("damping:\n  penalty: 0\n  half_life: 60s"), 1), "fw1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Hash() != a.Hash() {
		t.Error("hash depends on how a value is written")
	}
}

func TestLoad(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), "fw1")
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}
	_, err = Load("testdata/invalid-enums.yaml", "")
	if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "testdata/invalid-enums.yaml: ") {
		t.Errorf("invalid file: %v", err)
	}
}

func TestProblemString(t *testing.T) {
	p := Problem{Path: "links[1].gateway", Value: "x", Msg: "is not an IP address"}
	if got := p.String(); got != `links[1].gateway: "x" is not an IP address` {
		t.Errorf("got %s", got)
	}
	p = Problem{Path: "links[0].name", Value: "a\npass in all", Msg: "bad"}
	if got := p.String(); got != `links[0].name: "a\npass in all" bad` {
		t.Errorf("got %s", got)
	}
	err := error(&ValidationError{Problems: []Problem{{Msg: "a"}, {Path: "b", Msg: "c"}}})
	if err.Error() != "a\nb: c" || !errors.Is(err, ErrInvalid) {
		t.Errorf("ValidationError: %q", err)
	}
}

func TestPathForms(t *testing.T) {
	for in, want := range map[string]string{
		"links[0].probe.interval":         "links[0].probe.interval",
		"nodes[fw1].probe_source[isp1]":   "nodes.fw1.probe_source.isp1",
		"nodes[a b].witness":              `nodes["a b"].witness`,
		"cluster.etcd.embed.data_dir":     "cluster.etcd.embed.data_dir",
		"sticky[2].ports[10]":             "sticky[2].ports[10]",
		"cluster.etcd.embed.initial_clus": "cluster.etcd.embed.initial_clus",
	} {
		if got := msPath(in); got != want {
			t.Errorf("msPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBuiltInCode: a Config built from Default in code validates once
// ApplyDefaults has filled its links, and Validate reports what is missing.
func TestBuiltInCode(t *testing.T) {
	c := Default()
	if err := c.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Default() alone validated: %v", err)
	}
	c.Cluster.Gossip.Insecure = true
	c.Cluster.Etcd.Endpoints = []string{"http://127.0.0.1:2379"}
	c.LAN = LAN{Interface: "em1", Network: netip.MustParsePrefix("10.0.0.0/24")}
	c.Links = []Link{{Name: "a", Interface: "em0", Gateway: netip.MustParseAddr("10.0.0.1")}}
	if err := c.Validate(); err == nil {
		t.Fatal("links without probe defaults validated")
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	c.Node = "anything"
	if err := c.ValidateNode(); err != nil {
		t.Errorf("ValidateNode with no nodes: %v", err)
	}
	c.Nodes = map[string]NodeSpec{"fw1": {}}
	if err := c.ValidateNode(); err == nil || err.Error() != `node: "anything" is not one of nodes (fw1)` {
		t.Errorf("ValidateNode = %v", err)
	}
}

// TestTrackFileOverride: nodes.<n>.vrrp.track_file gives each node its own
// track file from one shared file, and the config hash stays the same on
// every node (no config-hash-mismatch warning).
func TestTrackFileOverride(t *testing.T) {
	fw1, err := parseFile(t, "testdata/valid-linux-nft.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fw2 := *fw1
	fw2.Node = "fw2"
	if got := fw1.TrackFile(); got != "/run/gwstated/vrrp-track" {
		t.Errorf("fw1 TrackFile() = %q, want vrrp.track_file", got)
	}
	if got := fw2.TrackFile(); got != "/run/gwstated/fw2/vrrp-track" {
		t.Errorf("fw2 TrackFile() = %q, want its override", got)
	}
	if fw1.Hash() != fw2.Hash() {
		t.Error("the nodes' config hashes differ")
	}
}
