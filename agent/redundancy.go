package agent

import (
	"context"
	"errors"

	"gwstated/config"
	"gwstated/internal/execrun"
	"gwstated/redundancy"
)

// carpRedundancy is CARP (package redundancy): the carp group's demotion
// counter and the roles of the carp.interfaces.
type carpRedundancy struct {
	r       execrun.Runner
	ifs     []string
	demoter *redundancy.Demoter // nil: carp.demote 0
}

// newCARP returns the CARP side for cfg, reading roles from ifs; nil when
// there is nothing to demote and nothing to read.
func newCARP(r execrun.Runner, cfg *config.Config, ifs []string) (Redundancy, error) {
	c := &carpRedundancy{r: r, ifs: ifs}
	if cfg.CARP.Demote > 0 {
		d, err := redundancy.NewDemoter(r, "", cfg.CARP.Group, cfg.CARP.Demote)
		if err != nil {
			return nil, err
		}
		c.demoter = d
	}
	if c.demoter == nil && len(ifs) == 0 {
		return nil, nil
	}
	return c, nil
}

func (c *carpRedundancy) Demote(ctx context.Context, impaired bool) (bool, error) {
	if c.demoter == nil {
		return false, nil
	}
	return c.demoter.Set(ctx, impaired)
}

func (c *carpRedundancy) Demoted() bool { return c.demoter != nil && c.demoter.Demoted() }

func (c *carpRedundancy) Roles(ctx context.Context) ([]Role, error) {
	var out []Role
	var errs []error
	for _, ifn := range c.ifs {
		vh, err := redundancy.ReadCARP(ctx, c.r, "", ifn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, v := range vh {
			out = append(out, Role{Interface: v.Interface, State: v.State})
		}
	}
	return out, errors.Join(errs...)
}
