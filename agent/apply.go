package agent

import (
	"context"
	"errors"
	"gwstated/cluster"
	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/redundancy"
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
	delivered := a.cur.Delivered
	a.cur.Delivered = time.Time{} // a retry waited for the backoff, not the loop
	res, err := a.dp.Apply(ctx, a.cfg, v)
	took := time.Since(start)
	a.m.applyDur.Observe(took.Seconds())
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
		if v.Time.After(a.started) {
			a.m.decideToIn.Observe(time.Since(v.Time).Seconds())
		}
		if len(res.Changed) > 0 || res.Route {
			a.m.ruleChanges.Inc()
			a.m.applyPhases(phasesOf(v, a.started, delivered, start, took, res))
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
		a.saveState(stateFile{Verdict: a.cur, Hash: res.Hash, Time: rec.Time})
		a.demote(ctx, v, time.Now())
	}
	rec.StateError = a.stateErr
	a.lastRec = &rec
	if a.o.Applied != nil {
		a.o.Applied(rec)
	}
	if node != nil {
		a.report(ctx, node, rec)
	}
}

// phasesOf are the phases of an apply that started at start, took took
// and did res, for verdict v delivered at delivered (zero: not known, or a
// retry) to an agent started at started.
func phasesOf(v linkstate.Verdict, started, delivered, start time.Time, took time.Duration, res DataplaneResult) map[string]time.Duration {
	ph := map[string]time.Duration{phaseEnd: took}
	if !delivered.IsZero() {
		ph[phaseQueue] = start.Sub(delivered)
		if v.Time.After(started) {
			ph[phaseCommit] = delivered.Sub(v.Time)
		}
	}
	if res.TableIn > 0 {
		ph[phaseTable] = res.TableIn
	}
	if res.StatesKilled > 0 {
		ph[phaseConntrack] = res.StatesKilled
	}
	return ph
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
//
// A demotion is held back while the impairment is younger than the
// impaired links' detection time (Link.Settle: fall × interval + timeout):
// when a link dies for both firewalls, one of them sees it first and is
// "impaired" only until the other's probes agree, a fraction of a second
// later. Demoting at once would move the shared address to the peer and
// back for every link that fails for everyone. A real one-sided failure
// outlasts the hold and is demoted when it falls due (demoteDue, armed by
// the loop). Taking a demotion back is never held.
func (a *agent) demote(ctx context.Context, v linkstate.Verdict, now time.Time) {
	if a.red == nil {
		return
	}
	var impaired []string
	var hold time.Duration
	for _, im := range v.Impaired {
		if im.Node == a.cfg.Node {
			impaired = append(impaired, im.Link)
			if l, ok := a.cfg.Link(im.Link); ok {
				hold = max(hold, l.Settle())
			}
		}
	}
	a.demoteDue = time.Time{}
	if len(impaired) == 0 {
		a.impairedSince = time.Time{}
	} else {
		if a.impairedSince.IsZero() {
			a.impairedSince = now
		}
		if due := a.impairedSince.Add(hold); now.Before(due) && !a.red.Demoted() {
			a.demoteDue = due
			a.log.Info("this node sees a link down that the cluster still has up; demoting unless its peers agree first",
				"links", impaired, "in", due.Sub(now).Round(time.Millisecond))
			return
		}
	}
	changed, err := a.red.Demote(ctx, len(impaired) > 0)
	proto, by, where := "carp", a.cfg.CARP.Demote, "group "+a.cfg.CARP.Group
	if a.cfg.Backend() == config.DataplaneNFT {
		proto, by, where = "vrrp", a.cfg.VRRP.Demote, "track file "+a.cfg.TrackFile()
	}
	if err != nil {
		a.logDemoteError(err, proto, impaired)
		return
	}
	if changed {
		if len(impaired) > 0 {
			a.m.lastDemotion.Set(float64(now.UnixNano()) / 1e9)
			a.log.Warn("this node is impaired: demoting it so the peer becomes master",
				"links", impaired, "protocol", proto, "by", by, "in", where)
		} else {
			a.log.Info("no longer impaired: demotion removed", "protocol", proto, "in", where)
		}
	}
	d := 0.0
	if a.red.Demoted() {
		d = 1
	}
	a.m.demoted.Set(d)
}

// logDemoteError logs a failed demotion; a refusal (the carp group counter
// would leave 0-255) carries the counter read back, and is retried by the
// loop's 2 s tick (retryDemote).
func (a *agent) logDemoteError(err error, proto string, impaired []string) {
	var de *redundancy.DemoteError
	if errors.As(err, &de) {
		a.log.Error("carp demotion refused; retrying every 2 s", "group", de.Group, "change", de.Change,
			"counter", de.Counter, "impaired_links", impaired, "err", err)
		return
	}
	a.log.Error(proto+" demotion failed", "err", err, "impaired_links", impaired)
}

// demoteRetrier is a Redundancy that can retry a refused demotion.
type demoteRetrier interface {
	RetryDemote(ctx context.Context) (changed bool, err error)
}

// retryDemote retries a demotion or undo that was refused.
func (a *agent) retryDemote(ctx context.Context) {
	r, ok := a.red.(demoteRetrier)
	if !ok {
		return
	}
	changed, err := r.RetryDemote(ctx)
	if err != nil {
		a.logDemoteError(err, "carp", nil) // only CARP refuses a demotion (the group counter bound)
		return
	}
	if !changed {
		return
	}
	a.log.Info("carp demotion retried and done", "group", a.cfg.CARP.Group, "demoted", a.red.Demoted())
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
