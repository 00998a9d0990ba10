package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gwstated/cluster"
)

func TestKeygenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gossip.key")
	r := runCtl(t.Context(), nil, "keygen", "--out", path)
	if r.code != exitOK || r.out != "" {
		t.Fatalf("keygen --out: exit status %d stdout %q stderr %q", r.code, r.out, r.err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %o, want 600", mode)
	}
	key, err := cluster.ReadKeyFile(path)
	if err != nil || len(key) != 32 {
		t.Fatalf("key file does not hold a 32-byte base64 key: %d bytes, %v", len(key), err)
	}
	first, _ := os.ReadFile(path)

	// An existing file is refused and left as it was.
	r = runCtl(t.Context(), nil, "keygen", "--out", path)
	if r.code != exitFail || !strings.Contains(r.err, "exists") || !strings.Contains(r.err, "--force") {
		t.Errorf("keygen over an existing file: exit status %d stderr %q, want %d and a hint at --force", r.code, r.err, exitFail)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Errorf("refused keygen changed the file")
	}

	// --force replaces it with a new key, still 0600, leaving no temporary file.
	os.Chmod(path, 0o644)
	r = runCtl(t.Context(), nil, "keygen", "--out", path, "--force")
	if r.code != exitOK {
		t.Fatalf("keygen --force: exit status %d stderr %q", r.code, r.err)
	}
	replaced, _ := os.ReadFile(path)
	if string(replaced) == string(first) {
		t.Errorf("keygen --force wrote the same key")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced key file mode %o, want 600", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("directory holds %d entries after --force, want only the key", len(entries))
	}
}

func TestKeygenStdout(t *testing.T) {
	a := runCtl(t.Context(), nil, "keygen")
	b := runCtl(t.Context(), nil, "keygen")
	for _, r := range []ctlResult{a, b} {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(r.out, "\n"))
		if r.code != exitOK || err != nil || len(k) != 32 {
			t.Errorf("keygen: exit status %d, output %q: %d bytes, %v; want a 32-byte base64 key", r.code, r.out, len(k), err)
		}
	}
	if a.out == b.out {
		t.Errorf("two keygen runs printed the same key")
	}
	if r := runCtl(t.Context(), nil, "keygen", "--force"); r.code != exitUsage {
		t.Errorf("--force without --out: exit status %d, want %d", r.code, exitUsage)
	}
}
