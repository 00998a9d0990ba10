package pfapply

import (
	"context"
	"gwstated/internal/execrun/exectest"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// pfctl -sr prints rules normalised; these are the forms SameRules must
// accept as the rules loaded (inet added, "to any", flags, "port = N",
// list expansion, commas in pools, "@if" targets, "round-robin" on
// interface nat-to, no comments) and the edits it must catch.
func TestSameRules(t *testing.T) {
	const nat = "# gwstated: NAT for link isp1\nmatch out on fxp0 from 192.168.0.0/24 nat-to (fxp0) label \"gwstated:isp1\"\n"
	const lb = "# gwstated: balance over isp1 isp2\npass in on dc0 from 192.168.0.0/24 route-to { 198.51.100.100 203.0.113.200 } round-robin label \"gwstated:loadbalance\"\n"
	const apps = "pass in on dc0 proto tcp from 192.168.0.0/24 to port { 25 587 } route-to 198.51.100.100 label \"gwstated:mail\"\n"
	const legacy = "pass out on fxp1 from (fxp0) route-to (fxp0 198.51.100.100) label \"gwstated:isp1\"\n"
	for _, tc := range []struct {
		name      string
		want, got string
		same      bool
	}{
		{"identical", nat, nat, true},
		{"empty", "", "", true},
		{"comment only vs empty", "# nothing\n", "", true},
		{"pfctl nat form", nat, "match out on fxp0 inet from 192.168.0.0/24 to any nat-to (fxp0) round-robin label \"gwstated:isp1\"\n", true},
		{"pfctl pool form", lb, "pass in on dc0 inet from 192.168.0.0/24 to any flags S/SA route-to { 198.51.100.100, 203.0.113.200 } round-robin label \"gwstated:loadbalance\"\n", true},
		{"pfctl @if targets", lb, "pass in on dc0 inet from 192.168.0.0/24 to any flags S/SA route-to { 198.51.100.100@fxp0, 203.0.113.200@fxp1 } round-robin label \"gwstated:loadbalance\"\n", true},
		{"pfctl expands port list", apps, "pass in on dc0 inet proto tcp from 192.168.0.0/24 to any port = 25 flags S/SA route-to 198.51.100.100 label \"gwstated:mail\"\npass in on dc0 inet proto tcp from 192.168.0.0/24 to any port = 587 flags S/SA route-to 198.51.100.100 label \"gwstated:mail\"\n", true},
		{"legacy form", legacy, "pass out on fxp1 inet from (fxp0) to any flags S/SA route-to (fxp0 198.51.100.100) label \"gwstated:isp1\"\n", true},
		{"flushed", nat, "", false},
		{"flushed, pfctl prints nothing but whitespace", lb, "\n\n", false},
		{"gateway dropped from pool", lb, "pass in on dc0 inet from 192.168.0.0/24 to any flags S/SA route-to 203.0.113.200 label \"gwstated:loadbalance\"\n", false},
		{"other gateway", apps, "pass in on dc0 inet proto tcp from 192.168.0.0/24 to any port = 25 flags S/SA route-to 203.0.113.200 label \"gwstated:mail\"\npass in on dc0 inet proto tcp from 192.168.0.0/24 to any port = 587 flags S/SA route-to 203.0.113.200 label \"gwstated:mail\"\n", false},
		{"port lost", apps, "pass in on dc0 inet proto tcp from 192.168.0.0/24 to any port = 25 flags S/SA route-to 198.51.100.100 label \"gwstated:mail\"\n", false},
		{"other interface", nat, "match out on fxp1 inet from 192.168.0.0/24 to any nat-to (fxp0) round-robin label \"gwstated:isp1\"\n", false},
		{"other label", nat, "match out on fxp0 inet from 192.168.0.0/24 to any nat-to (fxp0) round-robin label \"gwstated:isp2\"\n", false},
		{"someone's rule instead", nat, "pass all\n", false},
		{"block instead of pass", lb, "block in on dc0 inet from 192.168.0.0/24 to any route-to { 198.51.100.100, 203.0.113.200 } round-robin label \"gwstated:loadbalance\"\n", false},
	} {
		if got := SameRules(tc.want, tc.got); got != tc.same {
			t.Errorf("%s: SameRules = %v, want %v\nfingerprints:\n want %q\n got  %q", tc.name, got, tc.same, fingerprint(tc.want), fingerprint(tc.got))
		}
	}
}

// TestRepairPfctl: anchors read back in pfctl's normalised form are not
// drift; an anchor flushed by hand is reloaded, alone.
func TestRepairPfctl(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(2)
	ap, fr, s := newPfctlApplier(t, cfg)
	rs := rulesetUp(t, cfg, "isp1", "isp2")
	if _, err := ap.Apply(ctx, rs, 1); err != nil {
		t.Fatal(err)
	}
	fr.Take()

	// What OpenBSD's pfctl prints back (one anchor flushed: loadbalance).
	shown := map[string]string{
		"nat-isp1":     "match out on fxp0 inet from 192.168.0.0/24 to any nat-to (fxp0) round-robin label \"gwstated:isp1\"\n",
		"nat-isp2":     "match out on fxp1 inet from 192.168.0.0/24 to any nat-to (fxp1) round-robin label \"gwstated:isp2\"\n",
		"pass-isp1":    "pass out on fxp1 inet from (fxp0) to any flags S/SA route-to 198.51.100.100 label \"gwstated:isp1\"\n",
		"pass-isp2":    "pass out on fxp0 inet from (fxp1) to any flags S/SA route-to 203.0.113.200 label \"gwstated:isp2\"\n",
		"applications": "pass in on dc0 inet proto tcp from 192.168.0.0/24 to any port = 443 flags S/SA route-to 198.51.100.100 label \"gwstated:https\"\n",
		"loadbalance":  "",
	}
	for name, out := range shown {
		fr.On(exectest.ArgsEqual("/sbin/pfctl", "-a", name, "-sr"), out, nil)
	}
	d, err := ap.Repair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Checked != 6 || !slices.Equal(d.Drifted, []string{"loadbalance"}) {
		t.Fatalf("Repair: checked %d, drifted %q; want 6, [loadbalance]", d.Checked, d.Drifted)
	}
	calls, _ := fr.Take()
	var reads [][]string
	for _, a := range rs.Anchors {
		reads = append(reads, []string{"/sbin/pfctl", "-a", a.Name, "-sr"})
	}
	exectest.AssertCalls(t, "repair", calls, seq(reads, s.check("loadbalance"), s.load("loadbalance")))
	if d.Result.Loaded != 1 {
		t.Errorf("repair loaded %d anchors, want 1", d.Result.Loaded)
	}
}

// TestRepairDir: in the lab, a deleted anchor file is written again and a
// file edited by hand is replaced; untouched files are left alone.
func TestRepairDir(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(2)
	dir := t.TempDir()
	_, ap := dirApplier(t, dir, cfg)
	rs := rulesetUp(t, cfg, "isp1", "isp2")
	if _, err := ap.Apply(ctx, rs, 3); err != nil {
		t.Fatal(err)
	}
	d, err := ap.Repair(ctx)
	if err != nil || len(d.Drifted) != 0 || d.Result.Loaded != 0 {
		t.Fatalf("Repair of an untouched dir: %+v, %v", d, err)
	}
	if err := os.Remove(filepath.Join(dir, "nat-isp2.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "applications.conf"), []byte("pass all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, "loadbalance.conf"))
	d, err = ap.Repair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Drifted, []string{"nat-isp2", "applications"}) || d.Result.Loaded != 2 {
		t.Fatalf("Repair: drifted %q, loaded %d; want [nat-isp2 applications], 2", d.Drifted, d.Result.Loaded)
	}
	for _, a := range rs.Anchors {
		got, err := os.ReadFile(filepath.Join(dir, a.Name+".conf"))
		if err != nil || string(got) != a.Rules {
			t.Errorf("%s after repair: %q, %v; want %q", a.Name, got, err, a.Rules)
		}
	}
	if st2, _ := os.Stat(filepath.Join(dir, "loadbalance.conf")); !os.SameFile(st, st2) {
		t.Error("repair rewrote an anchor that had not drifted")
	}
}
