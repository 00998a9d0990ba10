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

func newPFctl(r execrun.Runner, cfg *config.Config, tools Tools, log *slog.Logger) (*pfDataplane, error) {
	dir := cfg.PF.Dir
	if tools.RulesDir != "" {
		dir = tools.RulesDir
	}
	p, err := pfapply.NewPfctl(r, pfapply.PfctlOptions{Dir: dir, Rtable: cfg.PF.Rtable, Pfctl: tools.Pfctl, Route: tools.Route})
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
		// A new Applier knows nothing of what pf holds: its first Apply
		// reads every anchor back and replaces those that differ (hitless).
		// With Adopt, anchors that already hold the rules (a restart) are
		// read back and left alone: a restarted agent changes nothing.
		opts := pfapply.OptionsFromConfig(cfg, d.log.With("node", cfg.Node))
		opts.Adopt = true
		d.applier = pfapply.NewApplier(d.backend, opts)
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
