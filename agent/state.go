package agent

import (
	"context"
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

// WriteFileFunc replaces a file's content as a whole; the state file is
// written through it (Options.WriteFile; default atomicfile.WriteFile:
// write, fsync, rename, fsync of the directory).
type WriteFileFunc func(name string, data []byte, perm fs.FileMode) error

// writeState replaces the state file through write.
func writeState(write WriteFileFunc, dir string, s stateFile) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, stateName)
	if err := write(path, append(b, '\n'), 0o600); err != nil {
		// Name the state file, not the temporary one beside it: its random
		// name would make every retry's error new (logged and reported
		// again).
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = &fs.PathError{Op: pe.Op, Path: path, Err: pe.Err}
		}
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// saveState writes the state file for the verdict in force. A failure (the
// state directory full or read-only) does not stop the agent: the rules
// are in force, only a restart without etcd would start without them. It
// is logged once per distinct error, reported in applied/<node>
// (state_error, shown by gwctl status) and in gwstated_state_save_failing,
// and the write is retried on the loop's slow tick until it succeeds; the
// error clears then. It reports whether the error changed.
func (a *agent) saveState(s stateFile) (changed bool) {
	write := a.o.WriteFile
	if write == nil {
		write = atomicfile.WriteFile
	}
	msg := ""
	err := writeState(write, a.o.StateDir, s)
	if err != nil {
		msg = err.Error()
		a.stateDue = &s
	} else {
		a.stateDue = nil
	}
	if msg == a.stateErr {
		return false
	}
	switch {
	case err != nil:
		a.log.Error("cannot save the local state file; the rules are applied, but a restart without etcd would start without them; retrying",
			"err", err, "seq", s.Verdict.Seq)
	default:
		a.log.Info("local state file saved again", "seq", s.Verdict.Seq)
	}
	a.stateErr = msg
	a.m.stateSave(err)
	return true
}

// retryState writes a state file whose write failed again, and reports
// the outcome in applied/<node> when it changed.
func (a *agent) retryState(ctx context.Context, node Node) {
	if a.stateDue == nil || !a.saveState(*a.stateDue) || a.lastRec == nil {
		return
	}
	a.lastRec.StateError = a.stateErr
	rec := *a.lastRec
	if a.o.Applied != nil {
		a.o.Applied(rec)
	}
	if node != nil {
		a.report(ctx, node, rec)
	}
}
