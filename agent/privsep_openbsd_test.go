//go:build openbsd

package agent

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestRestrictVeil runs Restrict in a child copy of the test binary (the veil
// cannot be lifted, so the test process itself must stay free) and checks
// that the unveiled files stay usable, that /etc/passwd vanishes, and that a
// child program still runs.
func TestRestrictVeil(t *testing.T) {
	if os.Getenv("GWSTATED_PRIVSEP_CHILD") == "1" {
		restrictChild(t)
		return
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gwstated.yaml")
	if err := os.WriteFile(cfg, []byte("node: fw1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestrictVeil$", "-test.v")
	cmd.Env = append(os.Environ(), "GWSTATED_PRIVSEP_CHILD=1", "GWSTATED_PRIVSEP_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func restrictChild(t *testing.T) {
	dir := os.Getenv("GWSTATED_PRIVSEP_DIR")
	cfg := filepath.Join(dir, "gwstated.yaml")
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Restrict(Paths{Config: cfg, Write: []string{state}, Exec: []string{"/bin/echo"}}); err != nil {
		t.Fatalf("Restrict: %v", err)
	}
	if _, err := os.ReadFile(cfg); err != nil {
		t.Errorf("config unreadable under the veil: %v", err)
	}
	if err := os.WriteFile(filepath.Join(state, "x"), nil, 0o600); err != nil {
		t.Errorf("state dir not writable under the veil: %v", err)
	}
	if _, err := os.ReadFile("/etc/passwd"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/etc/passwd under the veil: err = %v, want not exist", err)
	}
	if out, err := exec.Command("/bin/echo", "ok").Output(); err != nil || string(out) != "ok\n" {
		t.Errorf("/bin/echo under the veil: %q, %v", out, err)
	}
}
