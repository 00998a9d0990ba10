package pfapply

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gwstated/internal/execrun/exectest"
)

// TestSameRules: the rules as OpenBSD's pfctl prints them back (print_rule
// of pfctl_parser.c 1.352, with the automatic table's entries appended as
// Pfctl.ReadAnchor does) are the rules loaded; edits are not.
func TestSameRules(t *testing.T) {
	const nat = "# gwstated: NAT for link isp1\nmatch out on fxp0 from 192.168.0.0/24 nat-to (fxp0) label \"gwstated:isp1\"\n"
	const lb = "# gwstated: balance over isp1 isp2\npass in on dc0 from 192.168.0.0/24 route-to { 198.51.100.100 203.0.113.200 } round-robin label \"gwstated:loadbalance\"\n"
	const apps = "pass in on dc0 proto tcp from 192.168.0.0/24 to port { 25 587 } route-to 198.51.100.100 label \"gwstated:mail\"\n"
	const legacy = "pass out on fxp1 from (fxp0) route-to (fxp0 198.51.100.100) label \"gwstated:isp1\"\n"
	const lbShown = "pass in on dc0 inet from 192.168.0.0/24 to any flags S/SA label \"gwstated:loadbalance\" route-to <__automatic_9d2f8a1c_0> round-robin\n"
	for _, tc := range []struct {
		name      string
		want, got string
		same      bool
	}{
		{"identical", nat, nat, true},
		{"empty", "", "", true},
		{"comment only vs empty", "# nothing\n", "", true},
		{"pfctl nat form", nat, "match out on fxp0 inet from 192.168.0.0/24 to any label \"gwstated:isp1\" nat-to (fxp0) round-robin\n", true},
		{"pfctl pool form with its table", lb, lbShown + "table <__automatic_9d2f8a1c_0> const { 198.51.100.100 203.0.113.200 }\n", true},
		{"pfctl expands port list", apps, "pass in on dc0 inet proto tcp from 192.168.0.0/24 to any port = 25 flags S/SA label \"gwstated:mail\" route-to 198.51.100.100\npass in on dc0 inet proto tcp from 192.168.0.0/24 to any port = 587 flags S/SA label \"gwstated:mail\" route-to 198.51.100.100\n", true},
		{"legacy single route host", legacy, "pass out on fxp1 inet from (fxp0) to any flags S/SA label \"gwstated:isp1\" route-to 198.51.100.100@fxp0\n", true},
		{"pool table not read", lb, lbShown, false},
		{"pool changed by hand", lb, lbShown + "table <__automatic_9d2f8a1c_0> const { 198.51.100.100 203.0.113.201 }\n", false},
		{"gateway dropped from pool", lb, "pass in on dc0 inet from 192.168.0.0/24 to any flags S/SA label \"gwstated:loadbalance\" route-to 203.0.113.200\n", false},
		{"quick", nat, "match out quick on fxp0 inet from 192.168.0.0/24 to any label \"gwstated:isp1\" nat-to (fxp0) round-robin\n", false},
		{"negation", nat, "match out on fxp0 inet from ! 192.168.0.0/24 to any label \"gwstated:isp1\" nat-to (fxp0) round-robin\n", false},
		{"other label", nat, "match out on fxp0 inet from 192.168.0.0/24 to any label \"gwstated:isp2\" nat-to (fxp0) round-robin\n", false},
		{"other interface", nat, "match out on fxp1 inet from 192.168.0.0/24 to any label \"gwstated:isp1\" nat-to (fxp0) round-robin\n", false},
		{"port lost", apps, "pass in on dc0 inet proto tcp from 192.168.0.0/24 to any port = 25 flags S/SA label \"gwstated:mail\" route-to 198.51.100.100\n", false},
		{"flushed", nat, "", false},
		{"someone's rule instead", nat, "pass all flags S/SA\n", false},
		{"unreadable", nat, "this is not pf\n", false},
	} {
		if same, diff := RulesDiff(tc.want, tc.got); same != tc.same {
			t.Errorf("%s: SameRules = %v, want %v (%s)", tc.name, same, tc.same, diff)
		}
	}
}

// TestRepairGoldenNoDrift: every golden ruleset, applied through the pfctl
// backend to the emulator and read back as OpenBSD prints it, is not
// drift: Repair reloads nothing.
func TestRepairGoldenNoDrift(t *testing.T) {
	ctx := context.Background()
	for _, c := range goldenCases() {
		cfg := withSyntax(parseConfig(t, c.yaml), c.syntax)
		rs, err := Render(cfg, verdict(cfg, c.up, c.active))
		if err != nil {
			t.Fatal(err)
		}
		ap, emu, _ := newEmuApplier(t, cfg)
		if _, err := ap.Apply(ctx, rs, 1); err != nil {
			t.Fatalf("%s: Apply: %v", c.file, err)
		}
		emu.TakeCalls()
		d, err := ap.Repair(ctx)
		if err != nil {
			t.Fatalf("%s: Repair: %v", c.file, err)
		}
		if len(d.Drifted) != 0 || d.Result.Loaded != 0 || d.Checked != len(rs.Anchors) {
			t.Errorf("%s: Repair found drift %q (checked %d, loaded %d)", c.file, d.Drifted, d.Checked, d.Result.Loaded)
		}
		for _, call := range emu.TakeCalls() {
			if slices.Contains(call.Args, "-f") {
				t.Errorf("%s: repair without drift ran %q", c.file, call.Args)
			}
		}
	}
}

// TestRepairPfctl: anchors changed by hand in the emulator (a pool, quick,
// a negation, a label, a flush) are found and reloaded, alone; the reads
// are one pfctl -sr per anchor and one -T show for the pool's table.
func TestRepairPfctl(t *testing.T) {
	ctx := context.Background()
	for _, syntax := range []string{"openbsd", "legacy"} {
		cfg := withSyntax(applyConfig(2), syntax)
		ap, emu, s := newEmuApplier(t, cfg)
		rs := rulesetUp(t, cfg, "isp1", "isp2")
		if _, err := ap.Apply(ctx, rs, 1); err != nil {
			t.Fatal(err)
		}
		emu.TakeCalls()
		d, err := ap.Repair(ctx)
		if err != nil || len(d.Drifted) != 0 {
			t.Fatalf("%s: untouched: %+v, %v", syntax, d, err)
		}
		var reads [][]string
		for _, a := range rs.Anchors {
			reads = append(reads, []string{"/sbin/pfctl", "-a", a.Name, "-sr"})
			if a.Name == "loadbalance" {
				tbl := emu.Anchor("loadbalance").Tables[0].Name
				reads = append(reads, []string{"/sbin/pfctl", "-a", "loadbalance", "-t", tbl, "-T", "show"})
			}
		}
		exectest.AssertCalls(t, syntax+" untouched", callLines(emu.TakeCalls()), reads)

		lb := anchorText(t, rs, "loadbalance")
		nat := anchorText(t, rs, "nat-isp1")
		for _, edit := range []struct {
			name, anchor, text string
		}{
			{"pool changed by hand", "loadbalance", strings.Replace(lb, "203.0.113.200", "203.0.113.201", 1)},
			{"pool shrunk by hand", "loadbalance", strings.Replace(lb, "{ 198.51.100.100 203.0.113.200 } round-robin", "198.51.100.100", 1)},
			{"quick", "nat-isp1", strings.Replace(nat, "match out", "match out quick", 1)},
			{"negation", "nat-isp1", strings.Replace(nat, "from 192", "from ! 192", 1)},
			{"label", "nat-isp1", strings.Replace(nat, "gwstated:isp1", "gwstated:other", 1)},
			{"flushed", "nat-isp1", ""},
		} {
			if edit.name == "pool shrunk by hand" && syntax == "legacy" {
				edit.text = strings.Replace(lb, "{ (fxp0 198.51.100.100), (fxp1 203.0.113.200) } round-robin", "(fxp0 198.51.100.100)", 1)
			}
			if edit.text == anchorText(t, rs, edit.anchor) {
				t.Fatalf("%s %s: edit changed nothing", syntax, edit.name)
			}
			if err := emu.ReplaceAnchorText(edit.anchor, edit.text); err != nil {
				t.Fatalf("%s %s: %v", syntax, edit.name, err)
			}
			emu.TakeCalls()
			d, err := ap.Repair(ctx)
			if err != nil {
				t.Fatalf("%s %s: %v", syntax, edit.name, err)
			}
			if !slices.Equal(d.Drifted, []string{edit.anchor}) || d.Result.Loaded != 1 {
				t.Errorf("%s %s: drifted %q, loaded %d; want [%s], 1", syntax, edit.name, d.Drifted, d.Result.Loaded, edit.anchor)
			}
			var loads [][]string
			for _, c := range callLines(emu.TakeCalls()) {
				if slices.Contains(c, "-f") {
					loads = append(loads, c)
				}
			}
			exectest.AssertCalls(t, syntax+" "+edit.name, loads, seq(s.check(edit.anchor), s.load(edit.anchor)))
			if got := emu.Anchor(edit.anchor).Text; got != anchorText(t, rs, edit.anchor) {
				t.Errorf("%s %s: anchor after repair %q", syntax, edit.name, got)
			}
			if d, err := ap.Repair(ctx); err != nil || len(d.Drifted) != 0 {
				t.Errorf("%s %s: after repair: %+v, %v", syntax, edit.name, d, err)
			}
		}
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
