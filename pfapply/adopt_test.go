package pfapply

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestAdoptOnRestart: a new Applier (a restarted agent) over a backend that
// already holds the rules changes no anchor; an anchor changed by hand
// while the agent was down is the only one loaded; without Adopt every
// anchor is replaced once.
func TestAdoptOnRestart(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(2)
	dir := filepath.Join(t.TempDir(), "anchors")
	adopting := func() *Applier {
		t.Helper()
		b, err := NewDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		opts := OptionsFromConfig(cfg, nil)
		opts.Adopt = true
		return NewApplier(b, opts)
	}
	first := adopting()
	rs := rulesetUp(t, cfg, "isp1", "isp2")
	if _, err := first.Apply(ctx, rs, 1); err != nil {
		t.Fatal(err)
	}

	inode := func(name string) uint64 {
		t.Helper()
		fi, err := os.Stat(filepath.Join(dir, name+".conf"))
		if err != nil {
			t.Fatal(err)
		}
		return fileIno(fi)
	}
	before := map[string]uint64{}
	for _, a := range rs.Anchors {
		before[a.Name] = inode(a.Name)
	}

	appliedBefore, err := restartedDir(t, dir).ReadApplied()
	if err != nil {
		t.Fatal(err)
	}
	restarted := adopting()
	res, err := restarted.Apply(ctx, rs, 1)
	if err != nil {
		t.Fatal(err)
	}
	firstApplied, err := restartedDir(t, dir).ReadApplied()
	if err != nil {
		t.Fatal(err)
	}
	if res.Loaded != 0 || res.Validated != 0 || len(res.Changed) != 0 {
		t.Fatalf("restart with the rules in place: %+v, want no load", res)
	}
	for _, a := range rs.Anchors {
		if inode(a.Name) != before[a.Name] {
			t.Errorf("%s.conf was rewritten", a.Name)
		}
	}

	if !firstApplied.AppliedAt.Equal(appliedBefore.AppliedAt) {
		t.Errorf("applied_at moved on restart: %v → %v", appliedBefore.AppliedAt, firstApplied.AppliedAt)
	}

	// Someone emptied loadbalance while the agent was down.
	if err := os.WriteFile(filepath.Join(dir, "loadbalance.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	again := adopting()
	res, err = again.Apply(ctx, rs, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Changed, []string{"loadbalance"}) {
		t.Fatalf("changed %v, want only loadbalance", res.Changed)
	}

	// Adopt off: the first Apply replaces every anchor.
	_, plain := dirApplier(t, dir, cfg)
	res, err = plain.Apply(ctx, rs, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Loaded != len(rs.Anchors) {
		t.Fatalf("without Adopt: loaded %d, want %d", res.Loaded, len(rs.Anchors))
	}
}

func restartedDir(t *testing.T, dir string) *Dir {
	t.Helper()
	d, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
