package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"gwstated/config"
	"gwstated/internal/execrun/exectest"
)

// TestNewDataplane: pf.backend pfctl drives pf and CARP through the
// runner (demotion, roles from carp.interfaces); dir and --dry-run write
// files and read no roles; carp.demote 0 without interfaces has no
// redundancy side at all.
func TestNewDataplane(t *testing.T) {
	ctx := context.Background()
	base := config.Default()
	base.Node = "fw1"
	base.PF.Dir = t.TempDir()
	base.CARP.Interfaces = []string{"carp0"}
	o := Options{StateDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)}

	fr := &exectest.Runner{}
	fr.On(exectest.ArgsEqual("/sbin/ifconfig", "carp0"), "\tcarp: MASTER carpdev em0 vhid 1 advbase 1 advskew 0\n", nil)
	po := o
	po.Runner = fr
	dp, red, err := newDataplane(&base, po)
	if err != nil || dp.Name() != "pfctl" || red == nil {
		t.Fatalf("pfctl: %v, %v, %v", dp, red, err)
	}
	if changed, err := red.Demote(ctx, true); !changed || err != nil || !red.Demoted() {
		t.Errorf("Demote(true): %v, %v, demoted %v", changed, err, red.Demoted())
	}
	roles, err := red.Roles(ctx)
	if err != nil || len(roles) != 1 || roles[0] != (Role{Interface: "carp0", State: "MASTER"}) {
		t.Errorf("Roles: %+v, %v", roles, err)
	}
	calls, _ := fr.Take()
	exectest.AssertCalls(t, "pfctl redundancy", calls, [][]string{
		{"/sbin/ifconfig", "-g", "carp", "carpdemote", "50"},
		{"/sbin/ifconfig", "carp0"},
	})

	dir := base
	dir.PF.Backend = "dir"
	dp, red, err = newDataplane(&dir, po)
	if err != nil || dp.Name() != "dir" {
		t.Fatalf("dir: %v, %v", dp, err)
	}
	if roles, err := red.Roles(ctx); roles != nil || err != nil {
		t.Errorf("dir backend read roles: %v, %v", roles, err)
	}
	if calls, _ := fr.Take(); len(calls) != 0 {
		t.Errorf("dir backend ran commands: %q", calls)
	}

	dry := po
	dry.DryRun = true
	if dp, _, err := newDataplane(&base, dry); err != nil || dp.Name() != "dir" {
		t.Errorf("--dry-run: %v, %v; want the dir backend", dp, err)
	}
	if _, err := os.Stat(filepath.Join(o.StateDir, "anchors")); err != nil {
		t.Errorf("--dry-run: %v; want <state-dir>/anchors", err)
	}

	off := dir
	off.CARP.Demote = 0
	if _, red, err := newDataplane(&off, po); red != nil || err != nil {
		t.Errorf("carp.demote 0 on dir: %v, %v; want no redundancy side", red, err)
	}
	bad := base
	bad.CARP.Group = "carp; reboot"
	if _, _, err := newDataplane(&bad, po); err == nil {
		t.Error("hostile carp.group accepted")
	}
}
