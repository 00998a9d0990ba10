package lab

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"gwstated/cluster"
	"gwstated/pfapply"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// AppliedAt returns when node put the ruleset with hash in place, if that
// was after since: applied_at of its applied.json (the dir backend's clock
// right after it wrote the anchors).
func (c *Cluster) AppliedAt(node, hash string, since time.Time) (time.Time, error) {
	a, err := c.Applied(node)
	if err != nil {
		return time.Time{}, err
	}
	if a.Hash != hash || !a.AppliedAt.After(since) {
		return time.Time{}, fmt.Errorf("lab: %s holds hash %.12s applied at %s, want %.12s after %s", node,
			a.Hash, a.AppliedAt.Format(time.StampMicro), hash, since.Format(time.StampMicro))
	}
	return a.AppliedAt, nil
}

// NodeDir is a node's --state-dir: state.json, anchors/, dry-run.log.
func (c *Cluster) NodeDir(node string) string { return filepath.Join(c.opt.Dir, node) }

// Gwctl runs `gwctl <sub> --config F args...` in the witness namespace
// (where every etcd member is reachable) and returns its standard output.
func (c *Cluster) Gwctl(ctx context.Context, sub string, args ...string) (string, error) {
	flags := []string{sub, "--config", c.ConfigPath}
	cmd := c.Lab.Command(ctx, Witness, c.opt.Bin.Gwctl, append(flags, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("lab: gwctl %s: %w: %s", sub, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// HistoryEntry is one element of `gwctl history --json`.
type HistoryEntry struct {
	cluster.AuditRecord
	Sentence string `json:"sentence"`
}

// History returns the audit log (oldest first, at most the newest 1000).
func (c *Cluster) History(ctx context.Context) ([]HistoryEntry, error) {
	out, err := c.Gwctl(ctx, "history", "--json", "--limit", "1000")
	if err != nil {
		return nil, err
	}
	var h []HistoryEntry
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		return nil, fmt.Errorf("lab: gwctl history --json: %w", err)
	}
	slices.SortFunc(h, func(a, b HistoryEntry) int { return cmp.Compare(a.Seq, b.Seq) })
	return h, nil
}

// Anchor returns the text of a node's anchor as the dir backend wrote it
// ("" when the file does not exist).
func (c *Cluster) Anchor(node, anchor string) (string, error) {
	if c.pfMode() {
		return c.pfAnchor(node, anchor)
	}
	b, err := os.ReadFile(filepath.Join(c.NodeDir(node), "anchors", anchor+".conf"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}

// Applied returns a node's anchors/applied.json (zero before the first apply).
func (c *Cluster) Applied(node string) (pfapply.AppliedFile, error) {
	if c.pfMode() {
		return c.pfApplied(node)
	}
	var a pfapply.AppliedFile
	b, err := os.ReadFile(filepath.Join(c.NodeDir(node), "anchors", "applied.json"))
	if errors.Is(err, os.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return a, err
	}
	return a, json.Unmarshal(b, &a)
}

// DryRunLog returns a node's dry-run.log lines (commands it would have run,
// e.g. `ifconfig -g carp carpdemote 50`).
func (c *Cluster) DryRunLog(node string) ([]string, error) {
	if c.pfMode() {
		return c.pfCommandLog(node)
	}
	b, err := os.ReadFile(filepath.Join(c.NodeDir(node), "dry-run.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n"), nil
}

// ExpectedHash is the ruleset hash of the verdict in which exactly the
// links in up are up (`gwctl render --up ... --json`).
func (c *Cluster) ExpectedHash(ctx context.Context, up []string) (string, error) {
	key := strings.Join(up, ",")
	c.mu.Lock()
	h, ok := c.hash[key]
	c.mu.Unlock()
	if ok {
		return h, nil
	}
	cmd := exec.CommandContext(ctx, c.opt.Bin.Gwctl, "render", "--config", c.ConfigPath, "--node", FW1, "--up", key, "--json")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("lab: gwctl render --up %q: %w", key, err)
	}
	var r struct {
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.Hash == "" {
		return "", fmt.Errorf("lab: gwctl render --up %q: no hash in %q (%v)", key, out, err)
	}
	c.mu.Lock()
	c.hash[key] = r.Hash
	c.mu.Unlock()
	return r.Hash, nil
}
