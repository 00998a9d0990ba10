package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"gwstated/cluster"
	"gwstated/internal/testkit"
	"gwstated/linkstate"
)

// mountTmpfs mounts a small tmpfs on a test-owned directory and unmounts
// it when the test ends. Root only: chmod does not stop root's writes, a
// full or read-only file system does.
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.SkipOrRequire(t, "a full or read-only state directory needs root (mount a tmpfs)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=64k,mode=0700"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v, want ENOSPC", path, err)
			}
			return
		}
	}
}

func remount(t *testing.T, dir string, flags uintptr) {
	t.Helper()
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|flags, "size=64k,mode=0700"); err != nil {
		t.Fatalf("remount %s: %v", dir, err)
	}
}

// The real thing: the state directory is a 64 KiB tmpfs, first full, then
// read-only. The agent applies every verdict, reports the error (applied
// record, metric) and clears it once the disk has room or is writable.
func TestStateDirFullThenReadOnly(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	mountTmpfs(t, state)
	filler := filepath.Join(state, "filler")
	fill(t, filler)

	r := startStateRun(t, dir, nil)
	r.send(3, linkstate.Down)
	rec := r.await(t, "apply on a full state directory", 3, func(rec cluster.AppliedRecord) bool { return rec.StateError != "" })
	if rec.Error != "" || !strings.Contains(rec.StateError, "no space left on device") {
		t.Errorf("record %+v: want applied, with state_error naming ENOSPC", rec)
	}
	if got := r.failing(t); got != 1 {
		t.Errorf("gwstated_state_save_failing = %v on a full disk, want 1", got)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r.await(t, "room again", 3, func(rec cluster.AppliedRecord) bool { return rec.StateError == "" && rec.Error == "" })
	if got := r.savedSeq(t); got != 3 || r.failing(t) != 0 {
		t.Errorf("after the disk has room: state file seq %d (want 3), gwstated_state_save_failing %v (want 0)", got, r.failing(t))
	}

	remount(t, state, unix.MS_RDONLY)
	r.send(4, linkstate.Up)
	rec = r.await(t, "apply on a read-only state directory", 4, func(rec cluster.AppliedRecord) bool { return rec.StateError != "" })
	if rec.Error != "" || !strings.Contains(rec.StateError, "read-only file system") {
		t.Errorf("record %+v: want applied, with state_error naming EROFS", rec)
	}
	if lb := readFile(t, filepath.Join(r.anchors, "loadbalance.conf")); !strings.Contains(lb, "198.51.100.100") {
		t.Errorf("isp1 not back in loadbalance with a read-only state directory:\n%s", lb)
	}
	remount(t, state, 0)
	r.await(t, "writable again", 4, func(rec cluster.AppliedRecord) bool { return rec.StateError == "" && rec.Error == "" })
	if got := r.savedSeq(t); got != 4 || r.failing(t) != 0 {
		t.Errorf("after the remount: state file seq %d (want 4), gwstated_state_save_failing %v (want 0)", got, r.failing(t))
	}
}
