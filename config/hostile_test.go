package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// hostile are values that carry pf or shell syntax. None may validate in
// any field that names something.
var hostile = []string{
	"fxp0; reboot",
	"fxp0\npass in all",
	"fxp0\rpass",
	`fxp0"`,
	"fxp0'",
	"fxp0`reboot`",
	"$(reboot)",
	"$ext_if",
	"{fxp0}",
	"fxp0 }",
	"fxp0#x",
	`fxp0\`,
	"fxp0|sh",
	"fxp0&",
	"fxp0>x",
	"fxp0\x00",
	"fxp0\t",
	"ｆｘｐ０",
	"",
}

// TestHostileValues puts each hostile value into each name-like field of a
// valid configuration, writes it with Marshal, and parses it back: the
// field must be reported.
func TestHostileValues(t *testing.T) {
	fields := []struct {
		path string // "" when the value decides the path (a map key)
		set  func(c *Config, v string) string
	}{
		{"cluster.name", func(c *Config, v string) string { c.Cluster.Name = v; return "" }},
		{"cluster.gossip.join[0]", func(c *Config, v string) string { c.Cluster.Gossip.Join[0] = v + ":7946"; return "" }},
		{"cluster.gossip.key_file", func(c *Config, v string) string { c.Cluster.Gossip.KeyFile = "/etc/" + v; return "" }},
		{"cluster.etcd.endpoints[0]", func(c *Config, v string) string { c.Cluster.Etcd.Endpoints[0] = "http://" + v + ":2379"; return "" }},
		{"cluster.etcd.username", func(c *Config, v string) string {
			c.Cluster.Etcd.Username, c.Cluster.Etcd.PasswordFile = "x"+v, "/etc/pw"
			return ""
		}},
		{"cluster.etcd.tls.ca", func(c *Config, v string) string { c.Cluster.Etcd.TLS.CA = "/etc/" + v; return "" }},
		{"lan.interface", func(c *Config, v string) string { c.LAN.Interface = v; return "" }},
		{"links[0].name", func(c *Config, v string) string { c.Links[0].Name = v; return "" }},
		{"links[1].interface", func(c *Config, v string) string { c.Links[1].Interface = v; return "" }},
		{"sticky[0].name", func(c *Config, v string) string { c.Sticky[0].Name = v; return "" }},
		{"sticky[0].link", func(c *Config, v string) string { c.Sticky[0].Link = "isp1" + v; return "" }},
		{"pf.loadbalance_anchor", func(c *Config, v string) string { c.PF.LoadbalanceAnchor = v; return "" }},
		{"pf.applications_anchor", func(c *Config, v string) string { c.PF.ApplicationsAnchor = "apps" + v; return "" }},
		{"pf.nat_prefix", func(c *Config, v string) string { c.PF.NATPrefix = v; return "" }},
		{"pf.pass_prefix", func(c *Config, v string) string { c.PF.PassPrefix = "p" + v; return "" }},
		{"pf.dir", func(c *Config, v string) string { c.PF.Dir = "/var/db/" + v; return "" }},
		{"carp.interfaces[0]", func(c *Config, v string) string { c.CARP.Interfaces[0] = v; return "" }},
		{"carp.group", func(c *Config, v string) string { c.CARP.Group = "carp" + v; return "" }},
		{"metrics.listen", func(c *Config, v string) string { c.Metrics.Listen = "127.0.0.1:9707" + v; return "" }},
		{"nodes.fw1.gossip.bind", func(c *Config, v string) string {
			n := c.Nodes["fw1"]
			n.Gossip.Bind = v + ":7946"
			c.Nodes["fw1"] = n
			return ""
		}},
		{"nodes.fw1.vrrp.track_file", func(c *Config, v string) string {
			n := c.Nodes["fw1"]
			n.VRRP.TrackFile = "/run/" + v
			c.Nodes["fw1"] = n
			return ""
		}},
		{"nodes.fw1.probe_source", func(c *Config, v string) string {
			c.Nodes["fw1"].ProbeSource["isp1"+v] = c.Nodes["fw1"].ProbeSource["isp1"]
			delete(c.Nodes["fw1"].ProbeSource, "isp1")
			return ""
		}},
		{"", func(c *Config, v string) string {
			c.Nodes["fw3"+v] = NodeSpec{}
			return joinField("nodes", strings.ToLower("fw3"+v))
		}},
	}
	required := []string{"cluster.name", "lan.interface", "links[0].name", "links[1].interface", "sticky[0].name",
		"pf.loadbalance_anchor", "pf.nat_prefix", "carp.interfaces[0]", "cluster.gossip.join[0]", "cluster.etcd.endpoints[0]", "nodes.fw1.gossip.bind"}
	data, err := os.ReadFile("testdata/valid-carp-natto.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		for _, v := range hostile {
			if v == "" && !slices.Contains(required, f.path) {
				continue // the setter wraps the value: empty is harmless there
			}
			cfg, err := Parse(data, "fw2")
			if err != nil {
				t.Fatal(err)
			}
			want := f.path
			if p := f.set(cfg, v); p != "" {
				want = p
			}
			out, err := Marshal(cfg)
			if err != nil {
				t.Fatalf("%s = %q: Marshal: %v", want, v, err)
			}
			_, err = Parse(out, "fw2")
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("%s = %q: validated (err %v)", want, v, err)
				continue
			}
			found := false
			for _, p := range ve.Problems {
				found = found || p.Path == want
			}
			if !found {
				t.Errorf("%s = %q: not reported; got:\n%v", want, v, err)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(ve.Problems) {
				t.Errorf("%s = %q: %d problems on %d lines:\n%v", want, v, len(ve.Problems), n, err)
			}
		}
	}

	// The node argument too.
	for _, v := range hostile[:len(hostile)-1] {
		if _, err := Parse(data, "fw1"+v); !errors.Is(err, ErrInvalid) {
			t.Errorf("--node %q accepted", "fw1"+v)
		}
	}
}

// safeText is every character a valid configuration's text may hold:
// names, interface names, addresses, host:port, URLs and paths.
var safeText = regexp.MustCompile(`^[A-Za-z0-9._:/\[\]@+-]*$`)

// checkSafe fails if any string or map key in v holds anything else.
func checkSafe(t testing.TB, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		if !safeText.MatchString(v.String()) {
			t.Errorf("%s = %q validated", path, v.String())
		}
	case reflect.Pointer:
		if !v.IsNil() {
			checkSafe(t, v.Elem(), path)
		}
	case reflect.Struct:
		switch a := v.Interface().(type) {
		case interface{ String() string }:
			if s := a.String(); !safeText.MatchString(s) && s != "invalid IP" && s != "invalid Prefix" {
				t.Errorf("%s = %q validated", path, s)
			}
			return
		}
		for i := range v.NumField() {
			checkSafe(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		for i := range v.Len() {
			checkSafe(t, v.Index(i), path)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			checkSafe(t, k, path+" key")
			checkSafe(t, v.MapIndex(k), path)
		}
	}
}

// checkNames fails unless every name that reaches pf matches its rule.
func checkNames(t testing.TB, c *Config) {
	ifnameRe := ifnameRe
	if c.Dataplane == DataplaneNFT {
		ifnameRe = linuxIfnameRe // Linux names reach nft strings and ip(8) arguments only
	}
	names := []string{c.Cluster.Name, c.PF.LoadbalanceAnchor, c.PF.ApplicationsAnchor}
	for _, l := range c.Links {
		names = append(names, l.Name, c.PF.NATAnchor(l.Name), c.PF.PassAnchor(l.Name))
		if !ifnameRe.MatchString(l.Interface) {
			t.Errorf("interface %q validated", l.Interface)
		}
		for _, a := range append([]any{l.Gateway, l.NatTo}, anySlice(l.Probe.Targets)...) {
			if s := a.(interface{ String() string }).String(); strings.ContainsAny(s, "% ") && s != "invalid IP" {
				t.Errorf("address %q validated", s)
			}
		}
		if len(l.Name) > maxLinkName || len(c.PF.NATAnchor(l.Name)) > maxAnchor || len(c.PF.PassAnchor(l.Name)) > maxAnchor {
			t.Errorf("link name %q too long for pf", l.Name)
		}
	}
	for _, s := range c.Sticky {
		names = append(names, s.Name)
	}
	for n := range c.Nodes {
		names = append(names, n)
	}
	for _, n := range names {
		if !nameRe.MatchString(n) {
			t.Errorf("name %q validated", n)
		}
	}
	if !ifnameRe.MatchString(c.LAN.Interface) {
		t.Errorf("lan interface %q validated", c.LAN.Interface)
	}
}

func anySlice[T any](s []T) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// FuzzParse: Parse never panics; an error lists one problem per line; a
// configuration that validates holds only safe text and names, and
// survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*.yaml", "../deploy/examples/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "", withHostname("fw1"), Offline())
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error is not a ValidationError with problems: %v", err)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(ve.Problems) {
				t.Fatalf("%d problems on %d lines:\n%s", len(ve.Problems), n, err)
			}
			return
		}
		checkSafe(t, reflect.ValueOf(*cfg), "cfg")
		checkNames(t, cfg)
		out, err := Marshal(cfg)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := Parse(out, "", withHostname(cfg.Node), Offline())
		if err != nil {
			t.Fatalf("Parse(Marshal(cfg)): %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, cfg) {
			t.Fatalf("round trip changed the config:\n%s", out)
		}
	})
}
