package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"gwstated/cluster"
	"gwstated/internal/atomicfile"
)

// stateFile is what the agent keeps on local disk so a restart applies the
// last verdict before its probes have settled, even when etcd is unreachable.
type stateFile struct {
	Verdict cluster.VerdictRecord `json:"verdict"`
	Hash    string                `json:"hash"` // ruleset hash applied for Verdict
	Time    time.Time             `json:"time"`
}

const stateName = "state.json"

// readState returns the saved state; ok is false when there is none.
func readState(dir string) (stateFile, bool, error) {
	var s stateFile
	b, err := os.ReadFile(filepath.Join(dir, stateName))
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("state file: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, false, fmt.Errorf("state file %s: %w (delete it to start from etcd or from the probes)", filepath.Join(dir, stateName), err)
	}
	return s, true, nil
}

// writeState replaces the state file atomically (atomicfile.WriteFile:
// write, fsync, rename, fsync of the directory).
func writeState(dir string, s stateFile) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, stateName), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}
