package linkstate

import (
	"math"
	"slices"
	"time"
)

// Enabled reports whether damping is on: Penalty, HalfLife and Reuse are
// all positive. config validation rejects the other combinations of
// non-zero values; Decide treats them as damping off.
func (d Damping) Enabled() bool {
	return d.Penalty > 0 && d.HalfLife > 0 && d.Reuse > 0
}

// decay is penalty p, recorded at `at`, as of now.
func decay(d Damping, p float64, at, now time.Time) float64 {
	if p == 0 || !now.After(at) {
		return p
	}
	return p * math.Exp2(-float64(now.Sub(at))/float64(d.HalfLife))
}

// maxTime is later than any verdict will live.
var maxTime = time.Unix(1<<62, 0).UTC()

// reuseAt is when penalty p, recorded at `at`, has decayed to d.Reuse,
// rounded up to the nanosecond. Decide ends a suppression exactly when now
// reaches it and NextEvent reports it, so the two always agree.
func reuseAt(d Damping, p float64, at time.Time) time.Time {
	if p <= d.Reuse {
		return at
	}
	ns := math.Ceil(float64(d.HalfLife) * math.Log2(p/d.Reuse))
	if ns >= float64(maxTime.Sub(at)) {
		return maxTime
	}
	return at.Add(time.Duration(ns))
}

// PenaltyNow is the link's damping penalty decayed to now (its stored
// Penalty is as of PenaltyAt), for status displays and metrics.
func (lv LinkVerdict) PenaltyNow(d Damping, now time.Time) float64 {
	if !d.Enabled() {
		return 0
	}
	return decay(d, lv.Penalty, lv.PenaltyAt, now)
}

// NextEvent is the earliest time after which Decide could return something
// else for the same observations and overrides: an override in force
// expiring, a suppressed link's penalty decaying to Reuse, or a link still
// unknown reaching its Settle bound. If v is
// already stale at now (an override appeared or ended, a suppression is
// due, a link is new or damping was turned off) it returns now. ok is false when nothing is pending: Decide need not
// run again until the input changes.
func NextEvent(v Verdict, overrides []Override, pol Policy, now time.Time) (next time.Time, ok bool) {
	consider := func(t time.Time) {
		if t.Before(now) {
			t = now
		}
		if !ok || t.Before(next) {
			next, ok = t, true
		}
	}
	for _, lp := range pol.Links {
		lv, had := v.Links[lp.Name]
		ov, inForce := winningOverride(overrides, lp.Name, now)
		if !had || !inForce && lv.Override != "" || inForce && ov.Action != lv.Override ||
			lv.Suppressed && !pol.Damping.Enabled() {
			consider(now)
		}
		if had && lv.Suppressed && pol.Damping.Enabled() {
			consider(reuseAt(pol.Damping, lv.Penalty, lv.PenaltyAt))
		}
		if had && lv.Observed == Unknown && !lv.Probing.IsZero() && lp.Settle > 0 {
			consider(lv.Probing.Add(lp.Settle)) // still silent then: down
		}
	}
	for _, o := range overrides {
		if !o.Until.IsZero() && o.InForce(now) && o.Action.state() != Unknown &&
			slices.ContainsFunc(pol.Links, func(lp LinkPolicy) bool { return lp.Name == o.Link }) {
			consider(o.Until)
		}
	}
	return next, ok
}
