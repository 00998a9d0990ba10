package agent

import (
	"context"
	"slices"

	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/nftapply"
)

// neighbours returns the verdicts one link change away from v: each
// configured link flipped between up and down (unknown counts as down),
// the balanced set chosen again the way Decide does it — the up links of
// the lowest tier that has one, else all_down (all: every link, none: no
// link, keep: v's) — leaving out settling and flap damping. They are the
// verdicts the leader most likely decides next, whose tables the nft data
// plane validates ahead (prevalidate): a guess that misses only costs the
// nft -c on the packet path that it would have saved. Pure.
func neighbours(cfg *config.Config, v linkstate.Verdict) []linkstate.Verdict {
	out := make([]linkstate.Verdict, 0, len(cfg.Links))
	for i := range cfg.Links {
		n := linkstate.Verdict{Seq: v.Seq + 1, Links: make(map[string]linkstate.LinkVerdict, len(cfg.Links))}
		up := make([]bool, len(cfg.Links))
		for j, l := range cfg.Links {
			lv := v.Links[l.Name]
			up[j] = lv.State == linkstate.Up
			if j == i {
				up[j] = !up[j]
				lv.State = linkstate.Down
				if up[j] {
					lv.State = linkstate.Up
				}
			}
			n.Links[l.Name] = lv
		}
		best, found := 0, false
		for j, l := range cfg.Links {
			if up[j] && (!found || l.Tier < best) {
				best, found = l.Tier, true
			}
		}
		for j, l := range cfg.Links {
			if found && up[j] && l.Tier == best {
				n.Active = append(n.Active, l.Name)
			}
		}
		if !found {
			n.AllDown = true
			switch linkstate.AllDownMode(cfg.AllDown) {
			case linkstate.AllDownNone:
				n.Active = []string{}
			case linkstate.AllDownKeep:
				n.Active = slices.Clone(v.Active)
			default:
				for _, l := range cfg.Links {
					n.Active = append(n.Active, l.Name)
				}
			}
		}
		out = append(out, n)
	}
	return out
}

// prevalidation is one request to the nft data plane's validator: the
// plans next to the verdict just applied, for the applier in use.
type prevalidation struct {
	a     *nftapply.Applier
	seq   uint64
	plans []nftapply.Plan
}

// queuePrevalidate renders v's neighbours and hands them to Run; a
// request not yet taken is replaced (only the newest verdict's neighbours
// matter).
func (d *nftDataplane) queuePrevalidate(cfg *config.Config, v linkstate.Verdict) {
	req := prevalidation{a: d.applier, seq: v.Seq}
	for _, n := range neighbours(cfg, v) {
		if p, err := nftapply.Render(cfg, n); err == nil {
			req.plans = append(req.plans, p)
		}
	}
	for {
		select {
		case d.pre <- req:
			return
		default:
		}
		select {
		case <-d.pre:
		default:
		}
	}
}

// Run validates, off the agent's loop and off the packet path, the tables
// of the verdicts one link change away from the one in force (see
// nftapply.Applier.Prevalidate), until ctx ends. The agent runs it in a
// goroutine it waits for.
func (d *nftDataplane) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-d.pre:
			n, err := req.a.Prevalidate(ctx, req.plans)
			if err != nil && ctx.Err() == nil {
				d.log.Warn("a table one link change away is refused by nft; it would be checked again if a verdict needed it",
					"seq", req.seq, "err", err)
			} else if n > 0 {
				d.log.Debug("tables one link change away validated ahead", "seq", req.seq, "tables", n)
			}
		}
	}
}
