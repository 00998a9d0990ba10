package agent

import (
	"context"
	"errors"
	"gwstated/cluster"
	"gwstated/linkstate"
	"time"
)

// apply brings the data plane to the current verdict. A failure leaves
// the previous rules in force where possible, is reported in
// applied/<node> and a metric, and is retried with backoff.
func (a *agent) apply(ctx context.Context, node Node) {
	if !a.have || a.dp == nil {
		return
	}
	v := a.cur.Verdict
	log := a.log.With("seq", v.Seq)
	start := time.Now()
	res, err := a.dp.Apply(ctx, a.cfg, v)
	a.m.applyDur.Observe(time.Since(start).Seconds())
	a.m.applyOps.Add(float64(res.Ops))
	rec := cluster.AppliedRecord{Node: a.cfg.Node, Seq: v.Seq, Hash: res.Hash, Time: time.Now(), Backend: a.dp.Name()}
	if err != nil {
		a.attempt++
		a.retryDue = true
		a.m.applyErrors.Inc()
		rec.Error = err.Error()
		log.Error("apply failed; the previous rules stay where they were not replaced, retrying",
			"err", err, "attempt", a.attempt, "retry_in", a.o.Backoff.Delay(a.attempt-1))
	} else {
		a.attempt = 0
		if len(res.Changed) > 0 || res.Route {
			log.Info("verdict applied", "active", v.Active, "changed", res.Changed, "route", res.DefaultRoute,
				"killed", res.Killed, "hash", cluster.ShortHash(res.Hash), "took", time.Since(start))
		}
		for name, lv := range v.Links {
			if p, ok := a.applied.Links[name]; !ok || p.State != lv.State {
				log.Info("link verdict", "link", name, "state", lv.State, "reason", lv.Reason)
			}
		}
		a.m.verdictApplied(a.applied, v, res.Hash)
		a.applied = v
		if err := writeState(a.o.StateDir, stateFile{Verdict: a.cur, Hash: res.Hash, Time: rec.Time}); err != nil {
			log.Warn("cannot save the local state file; a restart without etcd would start without it", "err", err)
		}
		a.demote(ctx, v)
	}
	a.lastRec = &rec
	if a.o.Applied != nil {
		a.o.Applied(rec)
	}
	if node != nil {
		a.report(ctx, node, rec)
	}
}

func (a *agent) report(ctx context.Context, node Node, rec cluster.AppliedRecord) {
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Cluster.Etcd.RequestTimeout)
	defer cancel()
	if err := node.ReportApplied(rctx, rec); err != nil {
		if errors.Is(err, cluster.ErrEtcdUnreachable) {
			a.log.Debug("applied record kept until etcd is back", "seq", rec.Seq)
		} else {
			a.log.Warn("cannot write applied record", "seq", rec.Seq, "err", err)
		}
	}
}

// demote lowers this node's CARP (or VRRP) priority while it is impaired (it sees an
// up link down) so the healthy peer becomes master, and undoes it after.
func (a *agent) demote(ctx context.Context, v linkstate.Verdict) {
	if a.red == nil {
		return
	}
	var impaired []string
	for _, im := range v.Impaired {
		if im.Node == a.cfg.Node {
			impaired = append(impaired, im.Link)
		}
	}
	changed, err := a.red.Demote(ctx, len(impaired) > 0)
	if err != nil {
		a.log.Error("carp demotion failed", "err", err, "impaired_links", impaired)
		return
	}
	if changed {
		if len(impaired) > 0 {
			a.log.Warn("this node is impaired: demoting its carp group so the peer becomes master",
				"links", impaired, "by", a.cfg.CARP.Demote, "group", a.cfg.CARP.Group)
		} else {
			a.log.Info("no longer impaired: carp demotion removed", "group", a.cfg.CARP.Group)
		}
	}
	d := 0.0
	if a.red.Demoted() {
		d = 1
	}
	a.m.demoted.Set(d)
}

// repair reloads anchors someone changed by hand.
func (a *agent) repair(ctx context.Context) {
	if a.dp == nil || a.attempt > 0 {
		return
	}
	drifted, err := a.dp.Repair(ctx)
	if len(drifted) > 0 {
		a.m.drift.Add(float64(len(drifted)))
		a.log.Warn("repaired drifted anchors", "anchors", drifted, "seq", a.applied.Seq)
	}
	if err != nil {
		a.log.Error("drift check failed", "err", err)
	}
}

// readCARP publishes this node's CARP roles in its gossip and nodes/<node>
// record.
func (a *agent) readCARP(ctx context.Context, node Node) {
	if a.red == nil {
		return
	}
	roles, err := a.red.Roles(ctx)
	if err != nil {
		a.log.Warn("cannot read carp state", "err", err)
	} else if roles == nil {
		return // no carp.interfaces
	}
	var out []cluster.CARPStatus
	for _, r := range roles {
		out = append(out, cluster.CARPStatus{Interface: r.Interface, State: r.State})
	}
	node.SetCARP(out)
}
