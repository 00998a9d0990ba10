package pfemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"gwstated/pfapply/pfrule"
)

// DirConfig is the emulator's configuration in a state directory
// (config.json), for the lab's multi-call program.
type DirConfig struct {
	Dialect    string   `json:"dialect"` // openbsd or legacy
	Interfaces []string `json:"interfaces,omitempty"`
	Seed       uint64   `json:"seed"`
}

// Files of a state directory.
const (
	dirConfigFile = "config.json"
	dirStateFile  = "state.json"
	dirLockFile   = "lock"
)

// InitDir creates a state directory with a configuration and the given
// state (nil: empty).
func InitDir(dir string, c DirConfig, s *Snapshot) error {
	if c.Dialect != "openbsd" && c.Dialect != "legacy" {
		return fmt.Errorf("pfemu: dialect %q is not openbsd or legacy", c.Dialect)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, dirConfigFile), b, 0o600); err != nil {
		return err
	}
	if s == nil {
		s = &Snapshot{}
	}
	return writeState(dir, s)
}

func writeState(dir string, s *Snapshot) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, dirStateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, dirStateFile))
}

// WithDir locks the state directory (flock), loads the emulator from it,
// runs fn and, when fn returns nil, saves the state. Every process using
// the directory (the agent's commands, the lab harness) goes through it.
func WithDir(dir string, fn func(*Emu) error) error {
	lf, err := os.OpenFile(filepath.Join(dir, dirLockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("pfemu: lock %s: %w", dir, err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing the file unlocks too
	var c DirConfig
	b, err := os.ReadFile(filepath.Join(dir, dirConfigFile))
	if err != nil {
		return fmt.Errorf("pfemu: %w (run InitDir first)", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("pfemu: %s: %w", dirConfigFile, err)
	}
	d := pfrule.OpenBSD
	if c.Dialect == "legacy" {
		d = pfrule.Legacy
	}
	e := New(Options{Dialect: d, Interfaces: c.Interfaces, Seed: c.Seed})
	var s Snapshot
	b, err = os.ReadFile(filepath.Join(dir, dirStateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("pfemu: %s: %w", dirStateFile, err)
		}
	}
	e.Restore(s)
	if err := fn(e); err != nil {
		return err
	}
	s = e.Snapshot()
	return writeState(dir, &s)
}
