package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/nftapply"
	"gwstated/redundancy"
)

// nftDataplane is dataplane: nft: nftapply.Render and an Applier that runs
// nft, and writes routes, rules and conntrack deletions over netlink.
type nftDataplane struct {
	nft     config.NFT // the ranges the start-up check cleared
	r       nftapply.Runner
	killer  nftapply.StateKiller // conntrack entries of dead links (inProcess)
	routes  nftapply.RouteWriter // routes and rules (inProcess)
	nl      nftapply.NFTables    // the rule swap; nil: none
	log     *slog.Logger
	applier *nftapply.Applier
	cfgHash string             // the config the applier was built for
	pre     chan prevalidation // to Run (prevalidate.go); capacity 1
}

// newNFTDataplane runs the start-up check (nft, ip rule and, with
// nft.kill_states, conntrack are there; no mark, routing table or rule
// priority of gwstated's is used by anything else) and returns the data
// plane with VRRP (keepalived's track file, the role from vrrp.addresses)
// as its redundancy side, nil when there is neither a demotion nor an
// address to watch.
func newNFTDataplane(ctx context.Context, cfg *config.Config, o Options) (Dataplane, Redundancy, error) {
	r := o.NFTRunner
	if r == nil {
		r = nftapply.ExecRunner{}
	}
	if err := nftapply.Check(ctx, r, cfg); err != nil {
		return nil, nil, fmt.Errorf("dataplane nft: %w", err)
	}
	dp := &nftDataplane{nft: cfg.NFT, r: r, log: o.Log, pre: make(chan prevalidation, 1)}
	dp.nl, dp.killer, dp.routes = inProcess(r, o.NFTables, o.Log)
	red, err := newVRRP(cfg, o)
	if err != nil {
		return nil, nil, err
	}
	return dp, red, nil
}

// inProcess returns the writers that need no process on the failover
// path, in the namespace r's commands run in: the table's rules swapped
// over nf_tables netlink (nl, when given, instead), conntrack entries
// deleted over ctnetlink, routes and rules written over rtnetlink. One
// that cannot be opened falls back to its command through r (conntrack
// -D, ip -batch), saying why. A Runner other than ExecRunner (a test's)
// gets the commands, and the swap only when nl is given.
func inProcess(r nftapply.Runner, nl nftapply.NFTables, log *slog.Logger) (nftapply.NFTables, nftapply.StateKiller, nftapply.RouteWriter) {
	var k nftapply.StateKiller = nftapply.ExecKiller{R: r}
	var w nftapply.RouteWriter = nftapply.ExecRouteWriter{R: r}
	er, ok := r.(nftapply.ExecRunner)
	if !ok {
		return nl, k, w
	}
	if nl == nil {
		nl = nftapply.NetlinkConn{Netns: er.Netns}
	}
	if nk, err := nftapply.OpenNetlinkKiller(er.Netns); err != nil {
		log.Warn("conntrack entries will be deleted with conntrack(8), one process per link failure: ctnetlink not usable", "err", err)
	} else {
		k = nk
	}
	if nw, err := nftapply.OpenNetlinkRouteWriter(er.Netns); err != nil {
		log.Warn("routes and rules will be written with ip -batch, a process per step: rtnetlink not usable", "err", err)
	} else {
		w = nw
	}
	return nl, k, w
}

func (d *nftDataplane) Name() string { return config.DataplaneNFT }

// Check renders v for cfg and runs the table through nft -c. A config that
// moves gwstated's ranges is refused: the state under the old names would
// stay behind, and the new ranges have not been checked for collisions.
func (d *nftDataplane) Check(ctx context.Context, cfg *config.Config, v linkstate.Verdict) error {
	n, o := cfg.NFT, d.nft
	if n.Table != o.Table || n.MarkBase != o.MarkBase || n.TableBase != o.TableBase || n.RulePriority != o.RulePriority {
		return errors.New("nft.table, mark_base, table_base and rule_priority change only with a restart")
	}
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

// Apply renders and applies v. A new config gets a new Applier, which
// reads the kernel at its first Apply and writes only what differs.
func (d *nftDataplane) Apply(ctx context.Context, cfg *config.Config, v linkstate.Verdict) (DataplaneResult, error) {
	if h := cfg.Hash(); d.applier == nil || h != d.cfgHash {
		opts := nftapply.OptionsFromConfig(cfg, d.log.With("node", cfg.Node))
		opts.Killer, opts.Routes = d.killer, d.routes
		opts.NFTables = d.nl
		d.applier = nftapply.NewApplier(d.r, opts)
		d.cfgHash = h
	}
	p, err := nftapply.Render(cfg, v)
	if err != nil {
		return DataplaneResult{}, err
	}
	res, err := d.applier.Apply(ctx, p, v.Seq)
	if err == nil {
		d.queuePrevalidate(cfg, v)
	}
	out := DataplaneResult{Hash: p.Hash, DefaultRoute: p.DefaultRoute.Gateway, Route: res.DefaultRoute, Ops: res.Writes(),
		TableIn: res.TableIn, StatesKilled: res.StatesKilled}
	if res.Table {
		out.Changed = append(out.Changed, "table inet "+p.TableName)
	}
	out.Changed = append(out.Changed, res.Routes...)
	for _, r := range res.RulesAdded {
		out.Changed = append(out.Changed, "rule add "+r)
	}
	for _, r := range res.RulesDeleted {
		out.Changed = append(out.Changed, "rule del "+r)
	}
	for _, m := range res.Killed {
		for _, l := range p.Links {
			if l.Mark == m {
				out.Killed = append(out.Killed, l.Name)
			}
		}
	}
	return out, err
}

func (d *nftDataplane) Repair(ctx context.Context) ([]string, error) {
	if d.applier == nil {
		return nil, nil
	}
	dr, err := d.applier.Repair(ctx)
	return dr.Found, err
}

// vrrpRedundancy is keepalived VRRP: the track file an impaired node
// writes its demotion into, and the role (MASTER while one of
// vrrp.addresses is on this node).
type vrrpRedundancy struct {
	track *redundancy.TrackFile // nil: vrrp.demote 0
	addrs []netip.Addr
	local func() ([]netip.Addr, error)
}

// newVRRP returns the VRRP side for cfg; nil when there is neither a
// demotion to write nor an address to watch.
func newVRRP(cfg *config.Config, o Options) (Redundancy, error) {
	v := &vrrpRedundancy{addrs: cfg.VRRP.Addresses, local: o.LocalAddrs}
	if v.local == nil {
		v.local = redundancy.LocalAddrs
	}
	if cfg.VRRP.Demote > 0 {
		tf, err := redundancy.NewTrackFile(cfg.TrackFile(), cfg.VRRP.Demote)
		if err != nil {
			return nil, fmt.Errorf("vrrp.track_file %s: %w", cfg.TrackFile(), err)
		}
		v.track = tf
	}
	if v.track == nil && len(v.addrs) == 0 {
		return nil, nil
	}
	return v, nil
}

func (v *vrrpRedundancy) Demote(ctx context.Context, impaired bool) (bool, error) {
	if v.track == nil {
		return false, nil
	}
	return v.track.Set(ctx, impaired)
}

func (v *vrrpRedundancy) Demoted() bool { return v.track != nil && v.track.Demoted() }

// Roles is one role, "vrrp": MASTER or BACKUP (nil without addresses).
func (v *vrrpRedundancy) Roles(context.Context) ([]Role, error) {
	if len(v.addrs) == 0 {
		return nil, nil
	}
	have, err := v.local()
	if err != nil {
		return nil, fmt.Errorf("this node's addresses: %w", err)
	}
	return []Role{{Interface: "vrrp", State: redundancy.Role(v.addrs, have)}}, nil
}
