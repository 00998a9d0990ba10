package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const linuxExample = "testdata/render-linux-nft.yaml"

// TestRenderNFT: gwctl render for a dataplane: nft config, text against
// golden files and --json in the contract's shape.
func TestRenderNFT(t *testing.T) {
	for _, tt := range []struct{ up, golden string }{
		{"isp1,isp2", "render-linux-nft-allworking.golden"},
		{"isp2", "render-linux-nft-noisp1.golden"},
	} {
		r := runCtl(t.Context(), nil, "render", "--config", linuxExample, "--node", "fw1", "--up", tt.up)
		if r.code != exitOK || r.err != "" {
			t.Fatalf("--up %s: exit %d, stderr:\n%s", tt.up, r.code, r.err)
		}
		checkGolden(t, tt.golden, r.out)
	}

	r := runCtl(t.Context(), nil, "render", "--config", linuxExample, "--node", "fw2", "--up", "isp1", "--json")
	if r.code != exitOK || r.err != "" {
		t.Fatalf("--json: exit %d, stderr:\n%s", r.code, r.err)
	}
	var out renderNFTJSON
	dec := json.NewDecoder(strings.NewReader(r.out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("output does not have the contract's shape: %v\n%s", err, r.out)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.out), &raw); err != nil || len(raw) != 5 {
		t.Errorf("want exactly nft, routes, rules, default_route, hash: %v %s", err, r.out)
	}
	if !strings.HasPrefix(out.NFT, "table inet gwstated {\n") || out.DefaultRoute != "198.51.100.100" || len(out.Hash) != 64 {
		t.Errorf("unexpected render: %+v", out)
	}
	want := []string{
		"priority 100 lookup main suppress_prefixlength 0",
		"priority 101 fwmark 0x100 lookup 100",
		"priority 103 from 198.51.100.199 lookup 100", // fw2's probe source
		"priority 104 from 203.0.113.199 lookup 101",
	}
	if strings.Join(out.Rules, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(out.Rules, "\n"), strings.Join(want, "\n"))
	}
	// Same verdict on the other node: other source rules, same hash.
	r1 := runCtl(t.Context(), nil, "render", "--config", linuxExample, "--node", "fw1", "--up", "isp1", "--json")
	var out1 renderNFTJSON
	if err := json.Unmarshal([]byte(r1.out), &out1); err != nil {
		t.Fatal(err)
	}
	if out1.Hash != out.Hash {
		t.Errorf("fw1 and fw2 report different hashes for the same verdict: %s %s", out1.Hash, out.Hash)
	}
	// All down with all_down: all: every link, no empty table.
	r = runCtl(t.Context(), nil, "render", "--config", linuxExample, "--up", "", "--node", "fw1")
	if r.code != exitOK || !strings.Contains(r.out, "numgen inc mod 2") {
		t.Errorf("all down (all_down: all): exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// TestCheckNFT: gwctl check passes a Linux config and names what is wrong
// in a bad one.
func TestCheckNFT(t *testing.T) {
	r := runCtl(t.Context(), nil, "check", "--config", linuxExample, "--node", "fw1")
	if r.code != exitOK || !strings.Contains(r.out, "dataplane nft, table inet gwstated") {
		t.Errorf("exit %d:\n%s%s", r.code, r.out, r.err)
	}
	data, err := os.ReadFile(linuxExample)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "table_base: 100", "table_base: 253", 1)
	bad = strings.Replace(bad, "table: gwstated", `table: "x\"; flush ruleset"`, 1)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCtl(t.Context(), nil, "check", "--config", path, "--node", "fw1")
	if r.code != exitFail || !strings.Contains(r.err, "nft.table_base: \"253\" gives the 2 links tables 253-254") ||
		!strings.Contains(r.err, "nft.table: ") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.err)
	}
}
