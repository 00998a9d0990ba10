package main

import (
	"os"
	"path/filepath"
	"testing"

	"gwstated/pfapply/pfemu"
)

// TestMultiCall: the program called as DIR/pfctl, DIR/route keeps pf's
// state in DIR between runs.
func TestMultiCall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fw1")
	if rc := run([]string{"pfemu", "init", dir, "openbsd"}); rc != 0 {
		t.Fatalf("init: %d", rc)
	}
	for _, n := range []string{"pfctl", "route", "ifconfig"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("link %s: %v", n, err)
		}
	}
	rules := filepath.Join(t.TempDir(), "lb.conf")
	if err := os.WriteFile(rules, []byte("pass in on dc0 from 192.168.0.0/24 route-to { 198.51.100.100 203.0.113.200 } round-robin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rc := run([]string{filepath.Join(dir, "pfctl"), "-a", "loadbalance", "-f", rules}); rc != 0 {
		t.Fatalf("load: %d", rc)
	}
	if rc := run([]string{filepath.Join(dir, "route"), "-n", "change", "default", "198.51.100.100"}); rc != 1 {
		t.Errorf("route change without a default route: exit %d, want 1", rc)
	}
	if rc := run([]string{filepath.Join(dir, "route"), "-n", "add", "default", "198.51.100.100"}); rc != 0 {
		t.Errorf("route add: exit %d", rc)
	}
	err := pfemu.WithDir(dir, func(e *pfemu.Emu) error {
		if a := e.Anchor("loadbalance"); a == nil || len(a.Tables) != 1 {
			t.Errorf("loadbalance not kept: %+v", a)
		}
		if gw := e.DefaultRoute(0, false); gw.String() != "198.51.100.100" {
			t.Errorf("route not kept: %v", gw)
		}
		if n := len(e.TakeCalls()); n != 3 {
			t.Errorf("%d calls recorded, want 3", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rc := run([]string{filepath.Join(dir, "sh"), "-c", "reboot"}); rc != 2 {
		t.Errorf("called as sh: exit %d, want 2", rc)
	}
}
