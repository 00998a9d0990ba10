package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DemoOptions configure Demo.
type DemoOptions struct {
	Bin Binaries
	Dir string // work directory (config, logs, state); required
	// Verbose also writes the harness's own actions (process starts and stops).
	Verbose bool
}

// Demo is `make demo`: it builds the namespace lab, starts a gwstated
// cluster in it (fw1, fw2 and a witness, from the embedded default
// configuration cluster.yaml.tmpl), shows `gwctl status`, cuts isp1, shows
// the anchors change on both firewalls and `gwctl history` saying why,
// restores isp1 and shows the recovery, narrating each step on w. It
// returns an error when a step does not happen; everything it started is
// torn down before it returns.
func Demo(ctx context.Context, w io.Writer, opt DemoOptions) (err error) {
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(w, "\n==> "+format+"\n", args...)
	}
	step := func(format string, args ...any) {
		fmt.Fprintf(w, "    "+format+"\n", args...)
	}
	say("Building the lab: network namespaces for two firewalls (fw1, fw2), two ISP gateways (isp1, isp2), a witness and a LAN host")
	l, err := New(ctx, Options{})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	for _, fw := range l.Firewalls() {
		for _, s := range l.ISPs() {
			u := l.Uplink(fw, s.Name)
			step("%s %s %-15s -> %s gateway %s", fw, u.Interface, u.Addr4, s.Name, s.Gateway4)
		}
	}

	say("Starting gwstated on fw1, fw2 and the witness (each runs an embedded etcd member; --dry-run writes the pf anchors to files)")
	copt := ClusterOptions{Bin: opt.Bin, Dir: opt.Dir, Etcd: EtcdEmbedded}
	if opt.Verbose {
		copt.Log = w
	}
	c, err := StartCluster(ctx, l, copt)
	if err != nil {
		return fmt.Errorf("the cluster did not come up with both links: %w", err)
	}
	defer func() {
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	step("config: %s (from the embedded lab template; `gwctl check` passed for every node)", c.ConfigPath)
	step("both firewalls applied the verdict with isp1 and isp2 up")

	say("gwctl status")
	out, err := c.Gwctl(ctx, "status")
	if err != nil {
		return err
	}
	fmt.Fprint(w, indent(out))

	anchors := []string{c.Config.PF.LoadbalanceAnchor, c.Config.PF.NATAnchor("isp1")}
	before, err := readAnchors(c, anchors)
	if err != nil {
		return err
	}
	say("The anchors now, on both firewalls")
	printAnchors(w, anchors, before)

	say("Cutting isp1: nft drops every packet in isp1's gateway namespace")
	cut := time.Now()
	if err := l.Cut(ctx, "isp1"); err != nil {
		return err
	}
	at, err := c.WaitRulesAt(ctx, []string{"isp2"}, cut, 20*time.Second)
	if err != nil {
		return fmt.Errorf("the anchors did not change after isp1 was cut: %w", err)
	}
	step("fw1 applied the new rules %s after the cut, fw2 %s after", roundMs(at[FW1].Sub(cut)), roundMs(at[FW2].Sub(cut)))
	after, err := readAnchors(c, anchors)
	if err != nil {
		return err
	}
	for _, fw := range []string{FW1, FW2} {
		if after[fw][anchors[0]] == before[fw][anchors[0]] || strings.Contains(after[fw][anchors[0]], l.isps[0].Gateway4.String()) {
			return fmt.Errorf("%s: %s still routes via isp1 after the cut:\n%s", fw, anchors[0], after[fw][anchors[0]])
		}
		if strings.TrimSpace(after[fw][anchors[1]]) != "" {
			return fmt.Errorf("%s: %s is not empty after the cut:\n%s", fw, anchors[1], after[fw][anchors[1]])
		}
	}
	say("The anchors after the cut: isp1 is out of the balance and its NAT anchor is empty, on both firewalls")
	printAnchors(w, anchors, after)

	say("gwctl history: why it changed (the leader's decision and every node's evidence)")
	tr, err := c.WaitTransition(ctx, "isp1", "down", 0, 10*time.Second)
	if err != nil {
		return err
	}
	out, err = c.Gwctl(ctx, "history")
	if err != nil {
		return err
	}
	fmt.Fprint(w, indent(out))

	say("Restoring isp1 (the nft rules are removed)")
	restore := time.Now()
	if err := l.Restore(ctx, "isp1"); err != nil {
		return err
	}
	at, err = c.WaitRulesAt(ctx, []string{"isp1", "isp2"}, restore, 30*time.Second)
	if err != nil {
		return fmt.Errorf("the anchors did not come back after isp1 was restored: %w", err)
	}
	step("fw1 applied the rules with isp1 again %s after the restore, fw2 %s after", roundMs(at[FW1].Sub(restore)), roundMs(at[FW2].Sub(restore)))
	if _, err := c.WaitTransition(ctx, "isp1", "up", tr.Seq, 10*time.Second); err != nil {
		return err
	}
	back, err := readAnchors(c, anchors)
	if err != nil {
		return err
	}
	for _, fw := range []string{FW1, FW2} {
		for _, a := range anchors {
			if back[fw][a] != before[fw][a] {
				return fmt.Errorf("%s: %s after recovery differs from before the cut:\n%s\nwas:\n%s", fw, a, back[fw][a], before[fw][a])
			}
		}
	}
	say("Recovered: the anchors are as before the cut, on both firewalls")
	printAnchors(w, anchors, back)
	out, err = c.Gwctl(ctx, "history", "--link", "isp1", "--limit", "1")
	if err != nil {
		return err
	}
	fmt.Fprint(w, indent(out))

	say("Tearing down the agents, etcd and the namespaces (demo took %s)", time.Since(start).Round(100*time.Millisecond))
	return nil
}

func roundMs(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func readAnchors(c *Cluster, anchors []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, fw := range []string{FW1, FW2} {
		out[fw] = map[string]string{}
		for _, a := range anchors {
			s, err := c.Anchor(fw, a)
			if err != nil {
				return nil, err
			}
			out[fw][a] = s
		}
	}
	return out, nil
}

func printAnchors(w io.Writer, anchors []string, got map[string]map[string]string) {
	for _, fw := range []string{FW1, FW2} {
		for _, a := range anchors {
			text := strings.TrimSpace(got[fw][a])
			if text == "" {
				text = "(empty)"
			}
			fmt.Fprintf(w, "    %s %-12s %s\n", fw, a+":", strings.ReplaceAll(text, "\n", "\n"+strings.Repeat(" ", 21)))
		}
	}
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

// CacheBinaries builds the lab's binaries into the user's cache directory
// (reused, and rebuilt incrementally, by every demo and bench run) and
// returns them.
func CacheBinaries(ctx context.Context) (Binaries, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "gwstated-lab")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, err
	}
	return Build(ctx, dir)
}
