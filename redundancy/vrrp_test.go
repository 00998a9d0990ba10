package redundancy

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestTrackFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "vrrp-track")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// A crashed run left a demotion: the first Set writes 0 anyway.
	if err := os.WriteFile(path, []byte("50\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tf, err := NewTrackFile(path, 50)
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for i, c := range []struct {
		impaired, wrote bool
		want            string
	}{
		{false, true, "0\n"},
		{false, false, "0\n"},
		{true, true, "50\n"},
		{true, false, "50\n"},
		{false, true, "0\n"},
	} {
		wrote, err := tf.Set(t.Context(), c.impaired)
		if err != nil {
			t.Fatal(err)
		}
		if wrote != c.wrote || read() != c.want || tf.Demoted() != c.impaired {
			t.Errorf("step %d: wrote %v (want %v), file %q (want %q), demoted %v", i, wrote, c.wrote, read(), c.want, tf.Demoted())
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestTrackFileHostile(t *testing.T) {
	for _, c := range []struct {
		path string
		by   int
	}{
		{"relative/track", 50},
		{"/run/x\ny", 50},
		{"/run/x", 0},
		{"/run/x", 255},
		{"/run/x", -1},
	} {
		if _, err := NewTrackFile(c.path, c.by); !errors.Is(err, ErrTrackFile) {
			t.Errorf("NewTrackFile(%q, %d): %v, want ErrTrackFile", c.path, c.by, err)
		}
	}
}

func TestRole(t *testing.T) {
	vip := netip.MustParseAddr("192.168.0.1")
	have := []netip.Addr{netip.MustParseAddr("192.168.0.2"), netip.MustParseAddr("10.0.0.1")}
	if r := Role(nil, have); r != "" {
		t.Errorf("no VRRP addresses: %q", r)
	}
	if r := Role([]netip.Addr{vip}, have); r != RoleBackup {
		t.Errorf("without the address: %q", r)
	}
	if r := Role([]netip.Addr{netip.MustParseAddr("2001:db8::1"), vip}, append(have, vip)); r != RoleMaster {
		t.Errorf("with the address: %q", r)
	}
	local, err := LocalAddrs()
	if err != nil {
		t.Fatal(err)
	}
	if Role([]netip.Addr{netip.MustParseAddr("127.0.0.1")}, local) != RoleMaster {
		t.Errorf("127.0.0.1 not among the local addresses %v", local)
	}
}
