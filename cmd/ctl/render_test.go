package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestRenderText: the whole text output for the PF FAQ example, both links
// up and isp1 down, against golden files; and docs/DESIGN.md's rendering
// contract table, rule for rule.
func TestRenderText(t *testing.T) {
	for _, tt := range []struct{ up, golden string }{
		{"isp1,isp2", "render-pf-faq-allworking.golden"},
		{"isp2", "render-pf-faq-noisp1.golden"},
	} {
		r := runCtl(t.Context(), nil, "render", "--config", pfFAQExample, "--node", "fw1", "--up", tt.up)
		if r.code != exitOK || r.err != "" {
			t.Fatalf("--up %s: exit %d, stderr:\n%s", tt.up, r.code, r.err)
		}
		checkGolden(t, tt.golden, r.out)
	}

	r := runCtl(t.Context(), nil, "render", "--config", pfFAQExample, "--up", "isp1,isp2")
	for _, want := range []string{
		"verdict: isp1 up, isp2 up; active: isp1, isp2",
		"\nanchor nat-isp1:\n    # gwstated: NAT for link isp1\n    match out on fxp0 from 192.168.0.0/24 nat-to (fxp0) label \"gwstated:isp1\"\n",
		"    match out on fxp1 from 192.168.0.0/24 nat-to (fxp1) label",
		"    pass in on dc0 from 192.168.0.0/24 route-to { 198.51.100.100 203.0.113.200 } round-robin label",
		"    pass in on dc0 proto tcp from 192.168.0.0/24 to port 443 route-to 198.51.100.100 label",
		"\nanchor pass-isp1:\n    # gwstated: traffic from link isp1 leaving by another link\n    pass out on fxp1 from (fxp0) route-to 198.51.100.100 label",
		"\nanchor pass-isp2:\n    # gwstated: traffic from link isp2 leaving by another link\n    pass out on fxp0 from (fxp1) route-to 203.0.113.200 label",
		"\ndefault route: 198.51.100.100\nhash: ",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("no %q in:\n%s", want, r.out)
		}
	}
	order := []string{"anchor nat-isp1:", "anchor nat-isp2:", "anchor pass-isp1:", "anchor pass-isp2:", "anchor applications:", "anchor loadbalance:", "default route:"}
	last := -1
	for _, h := range order {
		i := strings.Index(r.out, h)
		if i <= last {
			t.Errorf("%q out of order in:\n%s", h, r.out)
		}
		last = i
	}

	r = runCtl(t.Context(), nil, "render", "--config", "testdata/render-alldown-none.yaml", "--up", "")
	if r.code != exitOK || strings.Count(r.out, "    (empty)\n") != 6 || !strings.Contains(r.out, "\ndefault route: none\n") {
		t.Errorf("all down, all_down none: exit %d, want six empty anchors and no route:\n%s%s", r.code, r.out, r.err)
	}
}

// renderJSONOut runs gwctl render --json and decodes the output strictly.
func renderJSONOut(t *testing.T, config, up string) (map[string]json.RawMessage, renderJSON) {
	t.Helper()
	r := runCtl(t.Context(), nil, "render", "--config", config, "--up", up, "--json")
	if r.code != exitOK || r.err != "" {
		t.Fatalf("--up %q --json: exit %d, stderr:\n%s", up, r.code, r.err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.out), &raw); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, r.out)
	}
	var out renderJSON
	dec := json.NewDecoder(strings.NewReader(r.out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("output does not have the contract's shape: %v\n%s", err, r.out)
	}
	return raw, out
}

func TestRenderJSON(t *testing.T) {
	raw, out := renderJSONOut(t, pfFAQExample, "isp2")
	if len(raw) != 3 || raw["anchors"] == nil || raw["default_route"] == nil || raw["hash"] == nil {
		t.Fatalf("keys %v, want exactly anchors, default_route, hash", keysOf(raw))
	}
	var anchors map[string]string
	if err := json.Unmarshal(raw["anchors"], &anchors); err != nil {
		t.Fatalf("anchors is not an object of strings: %v", err)
	}
	want := map[string]bool{ // name: has rules
		"nat-isp1": false, "nat-isp2": true, "pass-isp1": false, "pass-isp2": true,
		"applications": true, "loadbalance": true,
	}
	if len(anchors) != len(want) {
		t.Errorf("anchors %v, want %d", keysOf(anchors), len(want))
	}
	for name, full := range want {
		rules, ok := anchors[name]
		if !ok || (rules != "") != full {
			t.Errorf("anchor %s: %q (present %v), want rules: %v", name, rules, ok, full)
		}
	}
	if !strings.Contains(anchors["loadbalance"], "pass in on dc0 from 192.168.0.0/24 route-to 203.0.113.200 label \"gwstated:loadbalance\"\n") {
		t.Errorf("loadbalance: %q", anchors["loadbalance"])
	}
	if out.DefaultRoute != "203.0.113.200" {
		t.Errorf("default_route %q", out.DefaultRoute)
	}
	if len(out.Hash) != 64 || strings.Trim(out.Hash, "0123456789abcdef") != "" {
		t.Errorf("hash %q is not hex sha256", out.Hash)
	}
	text := runCtl(t.Context(), nil, "render", "--config", pfFAQExample, "--up", "isp2")
	if !strings.Contains(text.out, "\nhash: "+out.Hash+"\n") {
		t.Errorf("text and JSON output disagree on the hash %s:\n%s", out.Hash, text.out)
	}

	// Everything down: all_down none empties every anchor and the route
	// is the empty string; all_down all (pf-faq.yaml) fails open.
	_, none := renderJSONOut(t, "testdata/render-alldown-none.yaml", "")
	if none.DefaultRoute != "" || len(none.Anchors) != 6 {
		t.Errorf("all down, none: %+v", none)
	}
	for name, rules := range none.Anchors {
		if rules != "" {
			t.Errorf("all down, none: anchor %s holds %q", name, rules)
		}
	}
	if !bytes.Contains(raw["hash"], []byte(out.Hash)) || none.Hash == out.Hash {
		t.Errorf("hash does not follow the verdict: %s vs %s", none.Hash, out.Hash)
	}
	_, all := renderJSONOut(t, pfFAQExample, "")
	if all.DefaultRoute != "198.51.100.100" || !strings.Contains(all.Anchors["loadbalance"], "{ 198.51.100.100 203.0.113.200 } round-robin") {
		t.Errorf("all down, all (fail open): %+v", all)
	}
}

// TestRenderTiers: the verdict comes from linkstate.Decide, so tiers apply.
func TestRenderTiers(t *testing.T) {
	const three = "../../deploy/examples/three-links.yaml" // fibre1, fibre2 tier 1; lte tier 2
	tests := []struct {
		up, loadbalance, route, https string
	}{
		{"fibre1,fibre2,lte", "route-to { 198.51.100.1 203.0.113.1 } round-robin", "198.51.100.1", "198.51.100.1"},
		{"fibre2,lte", "route-to 203.0.113.1 label", "203.0.113.1", "203.0.113.1"},
		{"lte", "route-to 192.0.2.1 label", "192.0.2.1", "192.0.2.1"},
	}
	for _, tt := range tests {
		_, out := renderJSONOut(t, three, tt.up)
		if !strings.Contains(out.Anchors["loadbalance"], tt.loadbalance) {
			t.Errorf("--up %s: loadbalance %q, want %q", tt.up, out.Anchors["loadbalance"], tt.loadbalance)
		}
		if out.DefaultRoute != tt.route {
			t.Errorf("--up %s: default route %q, want %s", tt.up, out.DefaultRoute, tt.route)
		}
		if want := "to port 443 route-to " + tt.https + ` label "gwstated:https"`; !strings.Contains(out.Anchors["applications"], want) {
			t.Errorf("--up %s: applications %q, want %q", tt.up, out.Anchors["applications"], want)
		}
		if out.Anchors["nat-lte"] == "" {
			t.Errorf("--up %s: lte is up, its nat anchor is empty", tt.up)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"render", "--config", pfFAQExample, "--up", "isp1,isp3,lte"}, exitUsage,
			"gwctl render: --up: unknown link isp3, lte (configured: isp1, isp2)\n"},
		{[]string{"render", "--config", pfFAQExample}, exitUsage, "--up LINKS are required"},
		{[]string{"render", "--up", "isp1"}, exitUsage, "--config FILE and --up LINKS are required"},
		{[]string{"render", "--config", pfFAQExample, "--up", "isp1", "isp2"}, exitUsage, `unexpected argument "isp2"`},
		{[]string{"render", "--config", "testdata/check-invalid.yaml", "--up", "isp1"}, exitFail,
			`testdata/check-invalid.yaml: links[0].gateway: "198.51.100.300" is not an IP address`},
	} {
		r := runCtl(t.Context(), nil, tt.args...)
		if r.code != tt.code || !strings.Contains(r.err, tt.err) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tt.args, r.code, r.err, tt.code, tt.err)
		}
		if r.out != "" {
			t.Errorf("%q: stdout %q, want nothing", tt.args, r.out)
		}
	}
	// Spaces and repeats in --up are harmless.
	r1 := runCtl(t.Context(), nil, "render", "--config", pfFAQExample, "--up", " isp2 , isp2,")
	r2 := runCtl(t.Context(), nil, "render", "--config", pfFAQExample, "--up", "isp2")
	if r1.code != exitOK || r1.out != r2.out {
		t.Errorf("--up ' isp2 , isp2,' differs from --up isp2: exit %d\n%s%s", r1.code, r1.out, r1.err)
	}
}

func keysOf[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}
