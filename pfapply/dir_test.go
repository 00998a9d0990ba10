package pfapply

import (
	"context"
	"errors"
	"gwstated/config"
	"gwstated/internal/execrun/exectest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestDirBackend: the files of docs/DESIGN.md's contract, their content, no
// temporary file left behind, applied.json written.
func TestDirBackend(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(2)
	dir := filepath.Join(t.TempDir(), "anchors")
	b, ap := dirApplier(t, dir, cfg)
	for i, up := range [][]string{{"isp1", "isp2"}, {"isp2"}, nil, {"isp1"}} {
		rs := rulesetUp(t, cfg, up...)
		res, err := ap.Apply(ctx, rs, uint64(10+i))
		if err != nil {
			t.Fatalf("up=%v: %v", up, err)
		}
		if !res.Recorded {
			t.Errorf("up=%v: applied.json not recorded", up)
		}
		want := []string{"applications.conf", "applied.json", "default-route", "loadbalance.conf", "nat-isp1.conf", "nat-isp2.conf", "pass-isp1.conf", "pass-isp2.conf"}
		if got := dirFiles(t, dir); !slices.Equal(got, want) {
			t.Errorf("up=%v: files %q, want %q", up, got, want)
		}
		for _, a := range rs.Anchors {
			got, err := os.ReadFile(filepath.Join(dir, a.Name+".conf"))
			if err != nil || string(got) != a.Rules {
				t.Errorf("up=%v: %s.conf = %q, %v; want %q", up, a.Name, got, err, a.Rules)
			}
		}
		route, _ := os.ReadFile(filepath.Join(dir, "default-route"))
		if rs.DefaultRoute.IsValid() && string(route) != rs.DefaultRoute.String()+"\n" {
			t.Errorf("up=%v: default-route %q, want %v", up, route, rs.DefaultRoute)
		}
		applied, err := b.ReadApplied()
		if err != nil || applied.Seq != uint64(10+i) || applied.Hash != rs.Hash {
			t.Errorf("up=%v: applied.json %+v, %v; want seq %d hash %s", up, applied, err, 10+i, rs.Hash)
		}
		if len(res.Killed) != 0 {
			t.Errorf("dir backend killed states: %q", res.Killed)
		}
	}
	// all down (none) left the last route in place: 203.0.113.200 until
	// isp1 came back.
	route, _ := os.ReadFile(filepath.Join(dir, "default-route"))
	if string(route) != "198.51.100.100\n" {
		t.Errorf("default-route %q", route)
	}
}

// TestDirAppliedWrittenLast: when a load fails, applied.json still names
// the previous verdict, and the anchors loaded before the failure are in
// place.
func TestDirAppliedWrittenLast(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(2)
	dir := t.TempDir()
	b, ap := dirApplier(t, dir, cfg)
	first := rulesetUp(t, cfg, "isp1", "isp2")
	if _, err := ap.Apply(ctx, first, 1); err != nil {
		t.Fatal(err)
	}
	// Make nat-isp1.conf unwritable: a directory where the rename lands.
	next := rulesetUp(t, cfg, "isp2")
	if err := os.Remove(filepath.Join(dir, "nat-isp1.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "nat-isp1.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nat-isp1.conf", "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ap.Apply(ctx, next, 2)
	if !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), `"nat-isp1"`) {
		t.Fatalf("Apply: %v, want ErrLoad for nat-isp1", err)
	}
	if a, _ := b.ReadApplied(); a.Seq != 1 || a.Hash != first.Hash {
		t.Errorf("applied.json after failed apply: %+v, want seq 1", a)
	}
	lb, _ := os.ReadFile(filepath.Join(dir, "loadbalance.conf"))
	if string(lb) != anchorText(t, next, "loadbalance") {
		t.Errorf("loadbalance (loaded before the failure) = %q", lb)
	}
	for _, f := range dirFiles(t, dir) {
		if strings.Contains(f, ".tmp-") {
			t.Errorf("temporary file left behind: %s", f)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, "nat-isp1.conf")); err != nil {
		t.Fatal(err)
	}
	res, err := ap.Apply(ctx, next, 2)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !slices.Equal(res.Changed, []string{"nat-isp1", "pass-isp1"}) {
		t.Errorf("retry changed %q, want [nat-isp1 pass-isp1]", res.Changed)
	}
	if a, _ := b.ReadApplied(); a.Seq != 2 || a.Hash != next.Hash {
		t.Errorf("applied.json after retry: %+v, want seq 2", a)
	}
}

// TestDirRefusesHostile: names that would leave the directory, and text
// that Render never writes, are refused before anything is written.
func TestDirRefusesHostile(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	dir := filepath.Join(parent, "anchors")
	b, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ap := NewApplier(b, Options{})
	for _, name := range []string{"../escape", "..", "a/b", "/abs", "x/../../escape", ".hidden", "-n"} {
		_, err := ap.Apply(ctx, Ruleset{Anchors: []Anchor{{Name: name, Kind: KindBalance, Rules: "pass\n"}}}, 1)
		if !errors.Is(err, ErrAnchorName) {
			t.Errorf("name %q: %v, want ErrAnchorName", name, err)
		}
		if err := b.Load(ctx, Anchor{Name: name, Rules: "pass\n"}); !errors.Is(err, ErrAnchorName) {
			t.Errorf("Load %q: %v, want ErrAnchorName", name, err)
		}
		if _, err := b.ReadAnchor(ctx, name); !errors.Is(err, ErrAnchorName) {
			t.Errorf("ReadAnchor %q: %v, want ErrAnchorName", name, err)
		}
	}
	for _, rules := range []string{"pass\x00all\n", "pass all\r\n", "pass \x1b[31m\n", "\xff\xfe\n", "include \"/etc/pf.conf\"\n", "load anchor x from \"/tmp/y\"\n", strings.Repeat("#", maxRulesLen+1)} {
		good := Anchor{Name: "nat-isp1", Kind: KindNAT, Link: "isp1", Rules: "match out on fxp0 nat-to (fxp0)\n"}
		bad := Anchor{Name: "loadbalance", Kind: KindBalance, Rules: rules}
		_, err := ap.Apply(ctx, Ruleset{Anchors: []Anchor{good, bad}}, 1)
		if !errors.Is(err, ErrValidate) || !errors.Is(err, ErrHostileRules) {
			t.Errorf("rules %.20q: %v, want ErrValidate and ErrHostileRules", rules, err)
		}
	}
	if got := dirFiles(t, dir); len(got) != 0 {
		t.Errorf("files written despite refusals: %q", got)
	}
	if got := dirFiles(t, parent); !slices.Equal(got, []string{"anchors"}) {
		t.Errorf("files outside the dir: %q", got)
	}
	if err := b.SetDefaultRoute(ctx, netip.Addr{}); !errors.Is(err, ErrRoute) {
		t.Errorf("SetDefaultRoute(zero): %v", err)
	}
}

// TestPfctlFileModes: the pfctl backend's rule files are 0600 in a 0700
// directory, and named by anchor.
func TestPfctlFileModes(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pf")
	b, err := NewPfctl(&exectest.Runner{}, PfctlOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	a := Anchor{Name: "nat-isp1", Kind: KindNAT, Link: "isp1", Rules: "match out on fxp0 from 192.168.0.0/24 nat-to (fxp0)\n"}
	if err := b.Validate(ctx, []Anchor{a}); err != nil {
		t.Fatal(err)
	}
	if err := b.Load(ctx, a); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, %v; want 0700", st.Mode(), err)
	}
	if got := dirFiles(t, dir); !slices.Equal(got, []string{"nat-isp1.conf"}) {
		t.Errorf("files %q, want [nat-isp1.conf]", got)
	}
	st, err = os.Stat(filepath.Join(dir, "nat-isp1.conf"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", st.Mode(), err)
	}
}

func BenchmarkDirApply(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{2, 8} {
		b.Run(map[int]string{2: "links=2", 8: "links=8"}[n], func(b *testing.B) {
			cfg := applyConfig(n)
			d, err := NewDir(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			ap := NewApplier(d, OptionsFromConfig(cfg, nil))
			var all, but1 []string
			for _, l := range cfg.Links {
				all = append(all, l.Name)
				if l.Name != "isp1" {
					but1 = append(but1, l.Name)
				}
			}
			rss := []Ruleset{rulesetUp(b, cfg, all...), rulesetUp(b, cfg, but1...)}
			if _, err := ap.Apply(ctx, rss[0], 0); err != nil {
				b.Fatal(err)
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				if _, err := ap.Apply(ctx, rss[i%2], uint64(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// dirApplier returns a dir backend writing into dir and an Applier driving
// it with cfg's options.
func dirApplier(t *testing.T, dir string, cfg *config.Config) (*Dir, *Applier) {
	t.Helper()
	b, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b, NewApplier(b, OptionsFromConfig(cfg, nil))
}

// TestDirAppliedAt: applied.json's applied_at is the backend's clock when
// a hash was first recorded; a later seq with the same hash keeps it, a
// new hash takes the clock again.
func TestDirAppliedAt(t *testing.T) {
	ctx := context.Background()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 15, 0, 0, 123456789, time.UTC)
	d.now = func() time.Time { return now }
	step := func(seq uint64, hash string, want time.Time) {
		t.Helper()
		if err := d.Record(ctx, seq, hash); err != nil {
			t.Fatal(err)
		}
		a, err := d.ReadApplied()
		if err != nil || a.Seq != seq || a.Hash != hash || !a.AppliedAt.Equal(want) {
			t.Errorf("seq %d: %+v, %v; want applied_at %v", seq, a, err, want)
		}
	}
	t0 := now
	step(1, "aaaa", t0)
	now = now.Add(time.Second)
	step(2, "aaaa", t0) // same rules, only the verdict's reasons changed
	step(3, "bbbb", now)
}
