package agent

import (
	"context"
	"encoding/json"
	"errors"
	"gwstated/config"
	"net/netip"
	"slices"
)

// reload reads the configuration again. An invalid config, or one that
// does not render to valid rules for the verdict in force, is refused and
// the agent keeps running on the old one.
func (a *agent) reload(ctx context.Context) bool {
	g := a.gen
	cfg, err := a.o.LoadConfig()
	if err == nil {
		cfg.Witness = a.o.Witness
	}
	if err == nil && a.have && a.dp != nil {
		err = a.dp.Check(ctx, cfg, a.cur.Verdict)
	}
	if err == nil && (cfg.Backend() != a.cfg.Backend() || cfg.PF.Dir != a.cfg.PF.Dir || cfg.Node != a.cfg.Node) {
		err = errors.New("dataplane, pf.backend, pf.dir and the node name change only with a restart")
	}
	if err != nil {
		a.m.reloads.WithLabelValues("invalid").Inc()
		a.log.Error("config reload refused; still running on the previous config", "err", err)
		return false
	}
	a.m.reloads.WithLabelValues("ok").Inc()
	old := a.cfg
	a.cfg = cfg
	a.m.config(cfg)
	if cfg.Hash() == old.Hash() {
		a.log.Info("config reloaded: unchanged")
		return false
	}
	if sameRuntime(old, cfg) {
		a.log.Info("config reloaded: re-rendering the verdict in force")
		a.apply(ctx, g.node)
		return true
	}
	a.log.Info("config reloaded: restarting probes and cluster membership with the new config")
	g.stop()
	ng, err := a.start(ctx, cfg)
	if err != nil {
		// The old generation is gone; without a node the agent cannot go on.
		a.log.Error("cannot start with the reloaded config", "err", err)
		a.gen = &generation{errc: make(chan error, 1), node: g.node}
		a.gen.errc <- err
		return true
	}
	a.gen = ng
	a.apply(ctx, ng.node)
	return true
}

// sameRuntime reports whether two configs need the same cluster node and
// prober: only pf rendering, sticky classes, CARP and metrics differ.
func sameRuntime(a, b *config.Config) bool {
	strip := func(c *config.Config) []byte {
		x := *c
		x.PF, x.Sticky, x.CARP, x.Metrics = config.PF{}, nil, config.CARP{}, config.Metrics{}
		x.Links = slices.Clone(c.Links)
		for i := range x.Links {
			x.Links[i].NatTo = netip.Addr{}
		}
		j, _ := json.Marshal(x)
		return j
	}
	return string(strip(a)) == string(strip(b))
}
