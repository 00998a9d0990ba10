package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gwstated/pfapply"
	"gwstated/pfapply/pfemu"
)

// DataplanePF makes the firewalls run `dataplane: pf` — the pfctl backend,
// route(8) and ifconfig(8) — against the lab's OpenBSD emulator
// (lab/pfemu, gwstated/pfapply/pfemu) instead of --dry-run's dir backend:
// every load, pfctl -n check, drift read (-sr, -T show), state kill, route
// change and carpdemote goes through the emulated programs, whose state
// lives in NodeDir(node)/pfemu. gwstated is pointed there with its hidden
// --lab-pf-tools flag.
const DataplanePF = "pf"

// pfemuDir is a firewall's emulator directory (its pfctl, route, ifconfig).
func (c *Cluster) pfemuDir(node string) string { return filepath.Join(c.NodeDir(node), "pfemu") }

func (c *Cluster) pfMode() bool { return c.opt.Dataplane == DataplanePF }

// initPFEmu prepares a firewall's emulated OpenBSD once (kept over agent
// restarts): an empty pf, a default route via the first ISP's gateway, as
// any gateway has before gwstated starts, and carp0 in the carp group.
func (c *Cluster) initPFEmu(node string) error {
	dir := c.pfemuDir(node)
	if _, err := os.Stat(filepath.Join(dir, "pfctl")); err == nil {
		return nil
	}
	if c.opt.Bin.PfEmu == "" {
		return errors.New("lab: dataplane pf needs Binaries.PfEmu (lab.Build builds it)")
	}
	if err := pfemu.InitDir(dir, pfemu.DirConfig{Dialect: "openbsd", Seed: 1}, nil); err != nil {
		return err
	}
	for _, n := range []string{"pfctl", "route", "ifconfig"} {
		if err := os.Symlink(c.opt.Bin.PfEmu, filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	gw := c.Lab.ISPs()[0].Gateway4
	return pfemu.WithDir(dir, func(e *pfemu.Emu) error {
		e.SetDefaultRoute(0, false, gw)
		e.SetCARP("carp0", pfemu.CARP{State: "MASTER", Carpdev: "lan0", VHID: 1, Advbase: 1})
		return nil
	})
}

// agentPFArgs are the flags of a firewall's agent in pf mode.
func (c *Cluster) agentPFArgs(node string) []string {
	return []string{"--lab-pf-tools", c.pfemuDir(node)}
}

// Emu runs fn on a firewall's emulated OpenBSD (under its lock; changes
// fn makes are kept): to read what pf holds, or to change it by hand.
func (c *Cluster) Emu(node string, fn func(*pfemu.Emu) error) error {
	if !c.pfMode() {
		return errors.New("lab: Emu needs ClusterOptions.Dataplane = DataplanePF")
	}
	return pfemu.WithDir(c.pfemuDir(node), fn)
}

// pfAnchor is the rule text pf holds for an anchor (the file last loaded).
func (c *Cluster) pfAnchor(node, anchor string) (string, error) {
	var text string
	err := c.Emu(node, func(e *pfemu.Emu) error {
		if a := e.Anchor(anchor); a != nil {
			text = a.Text
		}
		return nil
	})
	return text, err
}

// pfApplied is what pf holds on a firewall, as a ruleset hash over the
// anchors gwstated owns and the default route (pfapply.RulesetHash, as
// Render computes it), with the seq of the agent's state file.
func (c *Cluster) pfApplied(node string) (pfapply.AppliedFile, error) {
	var out pfapply.AppliedFile
	var anchors []pfapply.Anchor
	var gw netip.Addr
	err := c.Emu(node, func(e *pfemu.Emu) error {
		for _, name := range c.anchorNames() {
			a := pfapply.Anchor{Name: name}
			if got := e.Anchor(name); got != nil {
				a.Rules = got.Text
			}
			anchors = append(anchors, a)
		}
		gw = e.DefaultRoute(0, false)
		return nil
	})
	if err != nil {
		return out, err
	}
	out.Hash = pfapply.RulesetHash(anchors, gw)
	// The seq, and the time the agent recorded the ruleset as applied,
	// come from its state file when it is about the rules pf holds.
	b, err := os.ReadFile(filepath.Join(c.NodeDir(node), "state.json"))
	if err == nil {
		var st struct {
			Verdict struct {
				Seq uint64 `json:"seq"`
			} `json:"verdict"`
			Hash string    `json:"hash"`
			Time time.Time `json:"time"`
		}
		if json.Unmarshal(b, &st) == nil && st.Hash == out.Hash {
			out.Seq, out.AppliedAt = st.Verdict.Seq, st.Time
		}
	}
	return out, nil
}

// anchorNames are the anchors gwstated owns, in Render's order.
func (c *Cluster) anchorNames() []string {
	var n []string
	for _, l := range c.Config.Links {
		n = append(n, c.Config.PF.NATAnchor(l.Name))
	}
	for _, l := range c.Config.Links {
		n = append(n, c.Config.PF.PassAnchor(l.Name))
	}
	return append(n, c.Config.PF.ApplicationsAnchor, c.Config.PF.LoadbalanceAnchor)
}

// pfCommandLog is the commands a firewall ran against the emulator, one
// per line as the dir backend's dry-run.log quotes them ("ifconfig" "-g"
// ...), for the scenarios that look for a carpdemote.
func (c *Cluster) pfCommandLog(node string) ([]string, error) {
	var lines []string
	err := c.Emu(node, func(e *pfemu.Emu) error {
		for _, call := range e.Snapshot().Calls {
			q := []string{fmt.Sprintf("%q", call.Name)}
			for _, a := range call.Args {
				q = append(q, fmt.Sprintf("%q", a))
			}
			lines = append(lines, strings.Join(q, " "))
		}
		return nil
	})
	return lines, err
}
