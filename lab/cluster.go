package lab

import (
	"context"
	_ "embed"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"time"

	"gwstated/config"
)

// Node names of the lab cluster.
const (
	FW1     = "fw1"
	FW2     = "fw2"
	Witness = "witness"
)

// Cluster is a running gwstated cluster in a Lab: agents for fw1, fw2 and
// the witness as separate processes, and (EtcdSeparate) three etcd members.
type Cluster struct {
	Lab        *Lab
	ConfigPath string
	KeyPath    string
	Config     *config.Config // as fw1 reads it

	opt   ClusterOptions
	mu    sync.Mutex
	procs map[string]*Process // by name: fw1, fw2, witness, etcd-fw1, ...
	hash  map[string]string   // expected ruleset hash by up set
}

// StartCluster writes the gossip key (gwctl keygen) and the configuration,
// checks it for every node (gwctl check), starts etcd and the three agents
// and waits until both firewalls have applied the verdict with every link
// up. On error everything started is stopped.
func StartCluster(ctx context.Context, l *Lab, opt ClusterOptions) (*Cluster, error) {
	if opt.Dir == "" {
		return nil, errors.New("lab: ClusterOptions.Dir is required")
	}
	if opt.LogLevel == "" {
		opt.LogLevel = "info"
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	c := &Cluster{
		Lab: l, opt: opt, procs: map[string]*Process{}, hash: map[string]string{},
		ConfigPath: filepath.Join(opt.Dir, "gwstated.yaml"),
		KeyPath:    filepath.Join(opt.Dir, "gossip.key"),
	}
	if err := c.start(ctx); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	if err := run(ctx, c.opt.Bin.Gwctl, "keygen", "--out", c.KeyPath); err != nil {
		return err
	}
	if _, err := WriteConfig(c.Lab, c.ConfigPath, c.KeyPath, c.opt.Dir, c.opt); err != nil {
		return err
	}
	for _, n := range []string{FW1, FW2, Witness} {
		if err := run(ctx, c.opt.Bin.Gwctl, "check", "--config", c.ConfigPath, "--node", n); err != nil {
			return err
		}
	}
	cfg, err := config.Load(c.ConfigPath, FW1)
	if err != nil {
		return err
	}
	c.Config = cfg
	if c.opt.Etcd == EtcdSeparate {
		for _, n := range []string{FW1, FW2, Witness} {
			if err := c.StartEtcd(n); err != nil {
				return err
			}
		}
	}
	// The agents start together: with embedded members, each one waits
	// for a quorum of the others before it serves.
	for _, n := range []string{Witness, FW1, FW2} {
		if err := c.StartAgent(n); err != nil {
			return err
		}
	}
	var up []string
	for _, s := range c.Lab.ISPs() {
		up = append(up, s.Name)
		// Before the probes settle, the links are unknown and all_down: all
		// renders the same rules as every link up: wait for the probes.
		if _, err := c.WaitTransition(ctx, s.Name, "up", 0, 60*time.Second); err != nil {
			return err
		}
	}
	return c.WaitRules(ctx, up, 60*time.Second)
}
