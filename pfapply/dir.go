package pfapply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"gwstated/internal/atomicfile"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Dir is the dir backend: it writes what pf would get into a directory, for
// the lab, tests and dry runs on machines without pf (docs/DESIGN.md, "dir
// backend"):
//
//	<dir>/<anchor>.conf   the anchor's rules, one file per anchor
//	<dir>/default-route   the gateway address and a newline
//	<dir>/applied.json    {"seq": N, "hash": "<hex>", "applied_at": "<RFC 3339>"},
//	                      written last
//
// Every file is replaced atomically: written to a temporary file in the same
// directory, synced, renamed over the old one, and the directory synced, so
// a reader sees the old content or the new, never a mix. Dir has no pfctl:
// validation only refuses names and text that Render never produces.
// ReadAnchor reads the file back, so drift repair works in the lab too (a
// deleted file reads as an empty anchor and is written again).
type Dir struct {
	dir string
	now func() time.Time // the clock of applied_at

	mu   sync.Mutex
	last AppliedFile // what Record wrote last
}

// AppliedFile is the content of <dir>/applied.json.
type AppliedFile struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	// AppliedAt is when the rules with this hash were in place: the
	// backend's clock right after it wrote them. A later verdict with the
	// same hash (only its reasons changed) keeps the time.
	AppliedAt time.Time `json:"applied_at"`
}

// NewDir returns a dir backend writing into dir, creating it (mode 0755)
// when missing.
func NewDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("pf.dir: empty; the dir backend needs a directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pf.dir: %w", err)
	}
	return &Dir{dir: dir, now: time.Now}, nil
}

// Validate implements Backend: names and text are checked; every failure is
// reported.
func (d *Dir) Validate(ctx context.Context, anchors []Anchor) error {
	var errs []error
	for _, a := range anchors {
		if err := checkAnchor(a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Load implements Backend: <dir>/<anchor>.conf is replaced atomically.
func (d *Dir) Load(ctx context.Context, a Anchor) error {
	if err := checkAnchor(a); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(d.dir, a.Name+".conf"), []byte(a.Rules), 0o644)
}

// ReadAnchor implements Backend. A missing file is an empty anchor.
func (d *Dir) ReadAnchor(ctx context.Context, name string) (string, error) {
	if err := CheckAnchorName(name); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(d.dir, name+".conf"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// SetDefaultRoute implements Backend: <dir>/default-route holds the address.
func (d *Dir) SetDefaultRoute(ctx context.Context, gw netip.Addr) error {
	if !gw.IsValid() {
		return fmt.Errorf("%w: no gateway address", ErrRoute)
	}
	return atomicfile.WriteFile(filepath.Join(d.dir, "default-route"), []byte(gw.String()+"\n"), 0o644)
}

// Record implements Recorder: <dir>/applied.json, with applied_at the
// time of the first Record of this hash.
func (d *Dir) Record(ctx context.Context, seq uint64, hash string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := AppliedFile{Seq: seq, Hash: hash, AppliedAt: d.now().UTC()}
	if d.last.Hash == hash && !d.last.AppliedAt.IsZero() {
		a.AppliedAt = d.last.AppliedAt
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(d.dir, "applied.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	d.last = a
	return nil
}

// ReadApplied returns <dir>/applied.json; fs.ErrNotExist when nothing was
// applied yet.
func (d *Dir) ReadApplied() (AppliedFile, error) {
	var a AppliedFile
	b, err := os.ReadFile(filepath.Join(d.dir, "applied.json"))
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("%s: %w", filepath.Join(d.dir, "applied.json"), err)
	}
	return a, nil
}
