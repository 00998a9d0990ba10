// Package golden compares test output with golden files and rewrites them
// with the test binary's -update flag.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"gwstated/internal/testkit"
)

// update is the -update flag of every test binary that uses Golden.
var update = flag.Bool("update", false, "rewrite golden files from the current output (then read the diff)")

// Updating reports whether the test runs with -update.
func Updating() bool { return *update }

// Check compares got with the file at path, or, with -update, writes got
// there first (creating its directory). A difference fails the test with
// the lines that differ.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update to accept, then read the diff):\n%s", path, testkit.LineDiff(string(want), string(got)))
	}
}
