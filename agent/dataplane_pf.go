package agent

import (
	"context"
	"log/slog"

	"gwstated/config"
	"gwstated/internal/execrun"
	"gwstated/linkstate"
	"gwstated/pfapply"
)

// pfDataplane is the pf data plane: pfapply.Render and an Applier on the
// pfctl or dir backend.
type pfDataplane struct {
	name    string
	backend pfapply.Backend
	log     *slog.Logger
	applier *pfapply.Applier
	cfgHash string // the config the applier was built for
}

func newPFctl(r execrun.Runner, cfg *config.Config, log *slog.Logger) (*pfDataplane, error) {
	p, err := pfapply.NewPfctl(r, pfapply.PfctlOptions{Dir: cfg.PF.Dir, Rtable: cfg.PF.Rtable})
	if err != nil {
		return nil, err
	}
	return &pfDataplane{name: "pfctl", backend: p, log: log}, nil
}

func newPFDir(dir string, log *slog.Logger) (*pfDataplane, error) {
	d, err := pfapply.NewDir(dir)
	if err != nil {
		return nil, err
	}
	return &pfDataplane{name: "dir", backend: d, log: log}, nil
}

func (d *pfDataplane) Name() string { return d.name }

func (d *pfDataplane) Check(ctx context.Context, cfg *config.Config, v linkstate.Verdict) error {
	rs, err := pfapply.Render(cfg, v)
	if err != nil {
		return err
	}
	return d.backend.Validate(ctx, rs.Anchors)
}

func (d *pfDataplane) Apply(ctx context.Context, cfg *config.Config, v linkstate.Verdict) (DataplaneResult, error) {
	if h := cfg.Hash(); d.applier == nil || h != d.cfgHash {
		// A new Applier knows nothing of what pf holds, so its first Apply
		// replaces every anchor once; replacing is hitless.
		d.applier = pfapply.NewApplier(d.backend, pfapply.OptionsFromConfig(cfg, d.log.With("node", cfg.Node)))
		d.cfgHash = h
	}
	rs, err := pfapply.Render(cfg, v)
	if err != nil {
		return DataplaneResult{}, err
	}
	res, err := d.applier.Apply(ctx, rs, v.Seq)
	return DataplaneResult{
		Hash:         rs.Hash,
		DefaultRoute: rs.DefaultRoute,
		Changed:      res.Changed,
		Route:        res.Route,
		Killed:       res.Killed,
		Ops:          res.Ops(),
	}, err
}

func (d *pfDataplane) Repair(ctx context.Context) ([]string, error) {
	if d.applier == nil {
		return nil, nil
	}
	dr, err := d.applier.Repair(ctx)
	return dr.Drifted, err
}
