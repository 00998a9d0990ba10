package agent

import (
	"context"
	"fmt"
	"log/slog"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/nftapply"
	"gwstated/redundancy"
)

// Dataplane is a data plane the agent drives through one small interface:
// render a verdict for a config, put it in place, repair drift. The Linux
// data plane (dataplane: nft) is behind it; pf is still driven through
// pfapply directly in agent.go until the structure refactor (issue 14)
// puts it behind the same interface.
type Dataplane interface {
	// Name is the backend reported in applied/<node> ("nft").
	Name() string
	// Apply renders v for cfg and brings the kernel to it.
	Apply(ctx context.Context, cfg *config.Config, v linkstate.Verdict) (DataplaneResult, error)
	// Validate renders v for cfg and checks it without changing anything
	// (a reloaded config must pass before it replaces the old one).
	Validate(ctx context.Context, cfg *config.Config, v linkstate.Verdict) error
	// Repair re-reads what the kernel holds and writes back what drifted.
	Repair(ctx context.Context) (found []string, writes int, err error)
	// Reconfigure takes a new config (SIGHUP); the next Apply uses it.
	Reconfigure(cfg *config.Config)
}

// DataplaneResult is what one Apply did.
type DataplaneResult struct {
	Hash   string // the rendered plan's hash, reported to etcd
	Writes int    // kernel writes
	Attrs  []any  // slog attributes describing the writes
}

// demoter lowers this node's priority in its redundancy protocol while it
// is impaired: CARP (pfapply.Demoter) or VRRP (redundancy.TrackFile).
type demoter interface {
	Set(ctx context.Context, impaired bool) (changed bool, err error)
	Demoted() bool
}

// nftDataplane is dataplane: nft.
type nftDataplane struct {
	r       nftapply.Runner
	log     *slog.Logger
	applier *nftapply.Applier
}

// newNFTDataplane runs the start-up check (nft, ip rule, conntrack there;
// no mark, routing table or rule priority of gwstated's used by anything
// else) and returns the data plane, or an error naming every problem.
func newNFTDataplane(ctx context.Context, cfg *config.Config, r nftapply.Runner, log *slog.Logger) (*nftDataplane, error) {
	if r == nil {
		r = nftapply.ExecRunner{}
	}
	if err := nftapply.Check(ctx, r, cfg); err != nil {
		return nil, fmt.Errorf("dataplane nft: %w", err)
	}
	return &nftDataplane{r: r, log: log, applier: nftapply.NewApplier(r, nftapply.OptionsFromConfig(cfg, log))}, nil
}

func (d *nftDataplane) Name() string { return config.DataplaneNFT }

func (d *nftDataplane) Apply(ctx context.Context, cfg *config.Config, v linkstate.Verdict) (DataplaneResult, error) {
	p, err := nftapply.Render(cfg, v)
	if err != nil {
		return DataplaneResult{}, err
	}
	res, err := d.applier.Apply(ctx, p, v.Seq)
	out := DataplaneResult{Hash: p.Hash, Writes: res.Writes()}
	if res.Writes() > 0 {
		out.Attrs = []any{"table", res.Table, "routes", res.Routes, "rules_added", res.RulesAdded,
			"rules_deleted", res.RulesDeleted, "default_route", p.DefaultRoute.String(), "killed_marks", res.Killed}
	}
	return out, err
}

func (d *nftDataplane) Validate(ctx context.Context, cfg *config.Config, v linkstate.Verdict) error {
	p, err := nftapply.Render(cfg, v)
	if err != nil {
		return err
	}
	if err := nftapply.CheckPlan(p); err != nil {
		return err
	}
	if _, err := d.r.Run(ctx, []byte(nftapply.Script(p)), "nft", "-c", "-f", "-"); err != nil {
		return fmt.Errorf("%w: %w", nftapply.ErrValidate, err)
	}
	return nil
}

func (d *nftDataplane) Repair(ctx context.Context) ([]string, int, error) {
	dr, err := d.applier.Repair(ctx)
	return dr.Found, dr.Result.Writes(), err
}

// Reconfigure starts a new Applier: it re-reads the kernel at its first
// Apply, and a config that renders the same plan writes nothing.
func (d *nftDataplane) Reconfigure(cfg *config.Config) {
	d.applier = nftapply.NewApplier(d.r, nftapply.OptionsFromConfig(cfg, d.log))
}

// setupNFT builds the Linux data plane (after its start-up check) and the
// VRRP track file demoter.
func (a *agent) setupNFT(ctx context.Context, cfg *config.Config) error {
	dp, err := newNFTDataplane(ctx, cfg, a.o.NFTRunner, a.log)
	if err != nil {
		return err
	}
	a.dp, a.backend = dp, dp.Name()
	if cfg.VRRP.Demote > 0 {
		tf, err := redundancy.NewTrackFile(cfg.VRRP.TrackFile, cfg.VRRP.Demote)
		if err != nil {
			return fmt.Errorf("vrrp.track_file: %w", err)
		}
		a.demoter = tf
	}
	return nil
}

// readVRRP reports the VRRP role (MASTER while one of vrrp.addresses is on
// this node) and the demotion, in the CARP status slot gossip carries.
func (a *agent) readVRRP(node Node) {
	if len(a.cfg.VRRP.Addresses) == 0 {
		return
	}
	local := a.o.LocalAddrs
	if local == nil {
		local = redundancy.LocalAddrs
	}
	have, err := local()
	if err != nil {
		a.log.Warn("cannot read this node's addresses for the VRRP role", "err", err)
		return
	}
	st := cluster.CARPStatus{Interface: "vrrp", State: redundancy.Role(a.cfg.VRRP.Addresses, have)}
	if a.demoter != nil && a.demoter.Demoted() {
		st.Demote = a.cfg.VRRP.Demote
	}
	node.SetCARP([]cluster.CARPStatus{st})
}

// repairDataplane is the drift check of a Dataplane.
func (a *agent) repairDataplane(ctx context.Context) {
	found, writes, err := a.dp.Repair(ctx)
	if len(found) > 0 {
		a.m.drift.Add(float64(len(found)))
		a.log.Warn("repaired kernel state that drifted from the applied plan", "found", found, "writes", writes, "seq", a.applied.Seq)
	}
	if err != nil {
		a.log.Error("drift check failed", "err", err)
	}
}
