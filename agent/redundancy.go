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
	r        execrun.Runner
	ifconfig string // path of ifconfig(8); "": /sbin/ifconfig
	ifs      []string
	demoter  *redundancy.Demoter // nil: carp.demote 0
}

// newCARP returns the CARP side for cfg, reading roles from ifs; nil when
// there is nothing to demote and nothing to read.
func newCARP(r execrun.Runner, cfg *config.Config, ifconfig string, ifs []string) (Redundancy, error) {
	c := &carpRedundancy{r: r, ifconfig: ifconfig, ifs: ifs}
	if cfg.CARP.Demote > 0 {
		d, err := redundancy.NewDemoter(r, ifconfig, cfg.CARP.Group, cfg.CARP.Demote)
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

// RetryDemote retries a demotion or undo ifconfig refused (the group
// counter would have left 0-255); false, nil when nothing is pending.
func (c *carpRedundancy) RetryDemote(ctx context.Context) (bool, error) {
	if c.demoter == nil || !c.demoter.Pending() {
		return false, nil
	}
	return c.demoter.Retry(ctx)
}

func (c *carpRedundancy) Roles(ctx context.Context) ([]Role, error) {
	var out []Role
	var errs []error
	for _, ifn := range c.ifs {
		vh, err := redundancy.ReadCARP(ctx, c.r, c.ifconfig, ifn)
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
