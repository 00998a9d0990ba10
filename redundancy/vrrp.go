package redundancy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gwstated/internal/atomicfile"
)

// VRRP roles, as CARP names them, so gwctl status shows one ROLE column.
const (
	RoleMaster = "MASTER"
	RoleBackup = "BACKUP"
)

// TrackFile is keepalived's vrrp_track_file for one node: gwstated writes
// the demotion (vrrp.demote) into it while the node is impaired and 0
// otherwise; keepalived, with "weight -1", lowers the node's VRRP priority
// by the value it reads, so the healthy peer becomes master.
type TrackFile struct {
	path string
	by   int

	mu      sync.Mutex
	written bool // the file holds what demoted says
	demoted bool
}

// ErrTrackFile: the track file cannot be used.
var ErrTrackFile = errors.New("vrrp track file")

// NewTrackFile returns a TrackFile writing into path (vrrp.track_file), by
// being the demotion (vrrp.demote, 1-254). Its directory is created.
func NewTrackFile(path string, by int) (*TrackFile, error) {
	if !filepath.IsAbs(path) || strings.ContainsFunc(path, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("%w: %q is not an absolute path", ErrTrackFile, path)
	}
	if by < 1 || by > 254 {
		return nil, fmt.Errorf("%w: demotion %d is not between 1 and 254", ErrTrackFile, by)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrackFile, err)
	}
	return &TrackFile{path: path, by: by}, nil
}

// Set writes the demotion when impaired and 0 otherwise, replacing the
// file atomically (write, fsync, rename, directory fsync) so keepalived
// never reads a half-written number. It writes on its first call whatever
// the file holds (a crashed run may have left a demotion), then only on a
// change, and reports whether it wrote.
func (t *TrackFile) Set(_ context.Context, impaired bool) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.written && t.demoted == impaired {
		return false, nil
	}
	v := 0
	if impaired {
		v = t.by
	}
	if err := atomicfile.WriteFile(t.path, []byte(strconv.Itoa(v)+"\n"), 0o644); err != nil {
		t.written = false
		return false, fmt.Errorf("%w: %w", ErrTrackFile, err)
	}
	t.written, t.demoted = true, impaired
	return true, nil
}

// Demoted reports whether the file holds the demotion.
func (t *TrackFile) Demoted() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.demoted
}

// Role is MASTER while one of vrrp (the VRRP addresses) is among have
// (the node's addresses), BACKUP otherwise. With no VRRP address it is "".
func Role(vrrp, have []netip.Addr) string {
	if len(vrrp) == 0 {
		return ""
	}
	for _, a := range vrrp {
		if slices.Contains(have, a) {
			return RoleMaster
		}
	}
	return RoleBackup
}

// LocalAddrs lists the addresses configured on this host's interfaces (in
// the network namespace the process runs in), from the kernel.
func LocalAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}
