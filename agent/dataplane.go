package agent

import (
	"context"
	"net/netip"
	"path/filepath"
	"time"

	"gwstated/config"
	"gwstated/internal/execrun"
	"gwstated/linkstate"
)

// Dataplane is what the agent needs of a data plane: bring the firewall
// and routes to a verdict. pf (pfapply: the pfctl or dir backend) is one;
// nftables (nftapply) is the other. Every method is called from the
// agent's loop only.
type Dataplane interface {
	// Name is the backend field of applied/<node>: "pfctl", "dir", "nft".
	Name() string
	// Check renders cfg for v and validates the result without changing
	// anything (the SIGHUP reload refuses a config that fails it).
	Check(ctx context.Context, cfg *config.Config, v linkstate.Verdict) error
	// Apply brings the data plane to v as cfg renders it. A config that
	// differs from the previous call's (cfg.Hash) is taken as a reload:
	// everything is replaced once, hitlessly. On error the result still
	// carries the rendered hash when rendering succeeded.
	Apply(ctx context.Context, cfg *config.Config, v linkstate.Verdict) (DataplaneResult, error)
	// Repair puts back what someone changed by hand since the last Apply
	// and names what it repaired.
	Repair(ctx context.Context) (repaired []string, err error)
}

// DataplaneResult is what one Apply did, for the log, metrics and
// applied/<node>.
type DataplaneResult struct {
	Hash         string     // of the rendered rules; the same on every node with the same verdict and config
	DefaultRoute netip.Addr // the rendered default route (invalid: none)
	Changed      []string   // what was replaced (anchors, or the nft table)
	Route        bool       // the default route was changed
	Killed       []string   // links whose states were killed
	Ops          int        // changes made (loads, route changes, kills)

	// Phases from the start of Apply (nft only; 0: not done, or a backend
	// that does not measure it).
	TableIn      time.Duration // the new table in force
	StatesKilled time.Duration // the dead links' conntrack entries deleted
}

// Redundancy is what the agent needs of the redundancy protocol (package
// redundancy): lower this node's priority while it is impaired, and read
// which role it holds.
type Redundancy interface {
	// Demote lowers this node's priority when impaired and takes its own
	// demotion back when not; it reports whether it changed anything.
	Demote(ctx context.Context, impaired bool) (changed bool, err error)
	// Demoted reports whether this node holds a demotion.
	Demoted() bool
	// Roles reads this node's role per shared address (nil: nothing to
	// read). An error names what could not be read; the roles read are
	// returned with it.
	Roles(ctx context.Context) ([]Role, error)
}

// Role is the state of one shared address group on this node: a carp
// interface's virtual host (MASTER, BACKUP, INIT).
type Role struct {
	Interface string
	State     string
}

// newDataplane selects the data plane and redundancy protocol for cfg:
// dataplane nft (nftables, policy routing and keepalived VRRP; after its
// start-up check, dataplane_nft.go), pf.backend pfctl (pf and CARP through
// real commands) or dir (files, and commands that would change the system
// written to a log); --dry-run forces dir into <state-dir>/anchors. red is
// nil when demotion is off and there are no roles to read.
func newDataplane(ctx context.Context, cfg *config.Config, o Options) (dp Dataplane, red Redundancy, err error) {
	runner := o.Runner
	if runner == nil {
		runner = execrun.ExecRunner{}
	}
	var ifs []string // carp interfaces to read roles from
	switch {
	case cfg.Backend() == config.DataplaneNFT && !o.DryRun:
		return newNFTDataplane(ctx, cfg, o)
	case o.DryRun || cfg.Backend() == config.DataplaneDir:
		dir := cfg.PF.Dir
		if o.DryRun {
			dir = filepath.Join(o.StateDir, "anchors")
		}
		// The dir backend is for machines without pf (the lab, tests,
		// --dry-run): commands that would change the system (CARP
		// demotion) are written to a log instead of run.
		runner = &logRunner{path: filepath.Join(o.StateDir, "dry-run.log")}
		if dp, err = newPFDir(dir, o.Log); err != nil {
			return nil, nil, err
		}
	default:
		if dp, err = newPFctl(runner, cfg, o.Tools, o.Log); err != nil {
			return nil, nil, err
		}
		ifs = cfg.CARP.Interfaces
	}
	if red, err = newCARP(runner, cfg, o.Tools.Ifconfig, ifs); err != nil {
		return nil, nil, err
	}
	return dp, red, nil
}
