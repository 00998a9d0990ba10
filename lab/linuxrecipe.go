package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gwstated/config"
	"gwstated/nftapply"
)

// NetnsRunner runs nftapply's commands inside a lab namespace (`ip netns
// exec <ns> name args...`), with nftapply's own error type.
type NetnsRunner struct{ Netns string }

// Run implements nftapply.Runner.
func (r NetnsRunner) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	return nftapply.ExecRunner{}.Run(ctx, stdin, "ip", append([]string{"netns", "exec", r.Netns, name}, args...)...)
}

// ManualDataplane puts gwstated's nft data plane into the firewalls by
// hand, with no agent: the rules `gwctl render --up` shows for a set of
// up links, applied with nftapply in a firewall's namespace. It is the
// ifstated method on the same Linux data plane (make lab-bench): a script
// that flips the same rules when its ping says so.
type ManualDataplane struct {
	l       *Lab
	cfg     map[string]*config.Config
	applier map[string]*nftapply.Applier
}

// NewManualDataplane writes the lab's nft configuration (the one
// StartLinux's agents read, keyed with `gwctl keygen`) into dir and
// prepares an applier per firewall. Call RouteLAN first.
func NewManualDataplane(ctx context.Context, l *Lab, bin Binaries, dir string) (*ManualDataplane, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	key := filepath.Join(dir, "gossip.key")
	if err := run(ctx, bin.Gwctl, "keygen", "--out", key); err != nil {
		return nil, err
	}
	m := &ManualDataplane{l: l, cfg: map[string]*config.Config{}, applier: map[string]*nftapply.Applier{}}
	opt := ClusterOptions{Dataplane: DataplaneNFT}
	for _, fw := range []string{FW1, FW2} {
		path := filepath.Join(dir, "gwstated-"+fw+".yaml")
		if _, err := WriteConfig(l, path, key, dir, opt); err != nil {
			return nil, err
		}
		cfg, err := config.Load(path, fw)
		if err != nil {
			return nil, err
		}
		r := NetnsRunner{Netns: l.Netns(fw)}
		if err := nftapply.Check(ctx, r, cfg); err != nil {
			return nil, fmt.Errorf("lab: %s: %w", fw, err)
		}
		m.cfg[fw], m.applier[fw] = cfg, nftapply.NewApplier(r, nftapply.OptionsFromConfig(cfg, nil))
	}
	return m, nil
}

// Apply puts into fw the rules of the verdict in which exactly the links
// in up are up, and returns the number of kernel writes.
func (m *ManualDataplane) Apply(ctx context.Context, fw string, up []string, seq uint64) (int, error) {
	cfg := m.cfg[fw]
	if cfg == nil {
		return 0, fmt.Errorf("lab: no firewall %q", fw)
	}
	p, err := nftapply.Render(cfg, cfg.VerdictUp(up, time.Now()))
	if err != nil {
		return 0, err
	}
	res, err := m.applier[fw].Apply(ctx, p, seq)
	return res.Writes(), err
}

// StartLinuxManual starts the real-traffic lab on l with no gwstated: the
// firewalls forward (RouteLAN) with every link's rules put in by hand
// (ManualDataplane), keepalived runs on both (fw1 master; their track
// files hold 0 and nothing writes them), and the traffic servers run. The
// returned Cluster owns keepalived and the traffic processes.
func StartLinuxManual(ctx context.Context, l *Lab, bin Binaries, trafficBin, dir string, log io.Writer) (*Cluster, *ManualDataplane, error) {
	if err := l.RouteLAN(ctx); err != nil {
		return nil, nil, err
	}
	m, err := NewManualDataplane(ctx, l, bin, dir)
	if err != nil {
		return nil, nil, err
	}
	var up []string
	for _, s := range l.ISPs() {
		up = append(up, s.Name)
	}
	for _, fw := range []string{FW1, FW2} {
		if _, err := m.Apply(ctx, fw, up, 1); err != nil {
			return nil, nil, err
		}
	}
	c := NewHarness(l, dir, log)
	for _, fw := range []string{FW1, FW2} {
		if err := os.MkdirAll(c.NodeDir(fw), 0o700); err != nil {
			return nil, nil, fmt.Errorf("lab: %w", err)
		}
		if err := os.WriteFile(c.TrackFile(fw), []byte("0\n"), 0o644); err != nil {
			return nil, nil, fmt.Errorf("lab: %w", err)
		}
		if err := c.StartKeepalived(fw, "0.1", c.TrackFile(fw)); err != nil {
			return nil, nil, errors.Join(err, c.Close())
		}
	}
	if err := c.WaitVRRPMaster(ctx, FW1, 30*time.Second); err != nil {
		return nil, nil, errors.Join(err, c.Close())
	}
	if err := c.StartServers(ctx, trafficBin); err != nil {
		return nil, nil, errors.Join(err, c.Close())
	}
	return c, m, nil
}
