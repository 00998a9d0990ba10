package linkstate

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"
)

// Decide computes the verdict on every link of pol from every known node's
// observations, the operator overrides and the previous verdict, as of now.
// It is pure: the same arguments give the same result on every node.
//
// Per link, in pol.Links order:
//
//  1. The views of alive nodes combine by pol.Decide (see combine); dead
//     nodes and missing observations count as unknown. When no alive node
//     has a view the previous combined state is kept (Unknown before any
//     data). The result is LinkVerdict.Observed.
//  2. Flap damping (pol.Damping) charges every Observed down→up and may
//     hold the link down (Suppressed) until its penalty decays to Reuse.
//  3. An override in force (Until zero or after now) wins: drain → Down,
//     force-up → Up.
//
// Then Active is chosen by tier and pol.AllDown, and Impaired lists alive
// nodes that see an Up link down.
//
// If the result equals prev (Verdict.Equal) prev is returned unchanged with
// no transitions; otherwise Seq is prev.Seq+1, Time is now, and there is one
// Transition per link whose State changed.
func Decide(prev Verdict, obs Observations, overrides []Override, pol Policy, now time.Time) (Verdict, []Transition) {
	now = now.Round(0) // drop the monotonic reading: verdicts travel as JSON
	d := decider{
		prev:      prev,
		obs:       obs,
		overrides: overrides,
		pol:       pol,
		mode:      pol.Decide,
		now:       now,
		nodes:     slices.Sorted(maps.Keys(obs)),
	}
	if d.mode != Majority && d.mode != All {
		d.mode = Any // the default; config validation rejects other values
	}
	for _, n := range d.nodes {
		if obs[n].Alive {
			d.alive = append(d.alive, nodeRef{name: n, view: obs[n]})
		}
	}

	lvs := make([]LinkVerdict, len(pol.Links))
	changed := len(prev.Links) != len(pol.Links)
	for i, lp := range pol.Links {
		p, had := prev.Links[lp.Name]
		lvs[i] = d.link(lp.Name, p, had)
		if !had || !lvs[i].Equal(p) {
			changed = true
		}
	}

	active, allDown, activeReason := d.active(lvs)
	impaired := d.impaired(lvs)
	if !changed && allDown == prev.AllDown && activeReason == prev.ActiveReason &&
		slices.Equal(active, prev.Active) && slices.Equal(impaired, prev.Impaired) {
		return prev, nil
	}

	next := Verdict{
		Seq:          prev.Seq + 1,
		Time:         now,
		Links:        make(map[string]LinkVerdict, len(lvs)),
		Active:       active,
		AllDown:      allDown,
		Impaired:     impaired,
		ActiveReason: activeReason,
	}
	for i, lp := range pol.Links {
		next.Links[lp.Name] = lvs[i]
	}

	// The active set's story goes into every transition of a decision that
	// changed it, so the audit log says what the cluster did about it.
	suffix := ""
	if allDown != prev.AllDown || !slices.Equal(active, prev.Active) {
		suffix = "; " + activeReason
	}
	var trs []Transition
	for i, lp := range pol.Links {
		from := prev.Links[lp.Name].State
		if lvs[i].State == from {
			continue
		}
		trs = append(trs, Transition{
			Link:     lp.Name,
			From:     from,
			To:       lvs[i].State,
			Reason:   lvs[i].Reason + suffix,
			Time:     now,
			Evidence: d.evidence(lp.Name),
		})
	}
	// Links that left the configuration: their verdict ends.
	for _, name := range slices.Sorted(maps.Keys(prev.Links)) {
		if _, ok := next.Links[name]; ok || prev.Links[name].State == Unknown {
			continue
		}
		trs = append(trs, Transition{
			Link:     name,
			From:     prev.Links[name].State,
			To:       Unknown,
			Reason:   "no longer in the configuration" + suffix,
			Time:     now,
			Evidence: d.evidence(name),
		})
	}
	return next, trs
}

type nodeRef struct {
	name string
	view NodeView
}

// decider holds one Decide call's inputs and derived indexes.
type decider struct {
	prev      Verdict
	obs       Observations
	overrides []Override
	pol       Policy
	mode      DecideMode
	now       time.Time
	nodes     []string  // every known node, sorted
	alive     []nodeRef // alive nodes, sorted by name
}

// tally counts the alive nodes' views of one link.
type tally struct {
	up, down int
}

func (t tally) known() int { return t.up + t.down }

func (d *decider) tally(link string) tally {
	var t tally
	for _, n := range d.alive {
		switch n.view.Links[link].State {
		case Up:
			t.up++
		case Down:
			t.down++
		}
	}
	return t
}

// combine turns the alive nodes' views into one state; prev is the previous
// combined state (LinkVerdict.Observed).
//
//   - any: Up while at least one alive node sees the link up; Down when some
//     alive node sees it down and none up.
//   - majority: Up when more than half of the alive nodes with a view see it
//     up, Down when more than half see it down. A tie keeps prev; with no
//     previous state a tie is Up (fail-open).
//   - all: Down as soon as one alive node sees it down; else Up when one sees
//     it up.
//
// With no alive node having a view every mode keeps prev (Unknown before
// any data).
func combine(mode DecideMode, t tally, prev State) State {
	if t.known() == 0 {
		return prev
	}
	switch mode {
	case Majority:
		switch {
		case 2*t.up > t.known():
			return Up
		case 2*t.down > t.known():
			return Down
		case prev == Up || prev == Down:
			return prev
		default:
			return Up
		}
	case All:
		if t.down > 0 {
			return Down
		}
		return Up
	default: // Any
		if t.up > 0 {
			return Up
		}
		return Down
	}
}

// link decides one link.
func (d *decider) link(name string, p LinkVerdict, had bool) LinkVerdict {
	prevState, prevObserved := Unknown, Unknown
	if had {
		prevState, prevObserved = p.State, p.Observed
	}
	t := d.tally(name)
	lv := LinkVerdict{Observed: combine(d.mode, t, prevObserved)}

	// Flap damping, on what the probes say, whatever overrides say.
	var dampNote string
	if dmp := d.pol.Damping; dmp.Enabled() && had {
		lv.Penalty, lv.PenaltyAt, lv.Suppressed = p.Penalty, p.PenaltyAt, p.Suppressed
		if lv.Suppressed && !d.now.Before(reuseAt(dmp, lv.Penalty, lv.PenaltyAt)) {
			lv.Penalty, lv.PenaltyAt, lv.Suppressed = decay(dmp, lv.Penalty, lv.PenaltyAt, d.now), d.now, false
			dampNote = "flap damping ended: penalty decayed to " + fmtNum(dmp.Reuse) + "; "
		}
		if prevObserved == Down && lv.Observed == Up {
			lv.Penalty, lv.PenaltyAt = decay(dmp, lv.Penalty, lv.PenaltyAt, d.now)+dmp.Penalty, d.now
			if lv.Penalty > dmp.Suppress {
				lv.Suppressed = true
			}
		}
	}

	// Settling: a link no alive node has a view of yet keeps its place
	// (see active) while it is probed, for at most the Settle bound;
	// then the silence counts as down.
	var settleNote string
	if lv.Observed == Unknown {
		if had {
			lv.Probing = p.Probing
		}
		switch probed, answered := d.probed(name); {
		case answered:
			// An answer came: the probes will settle it (rise answers
			// make it up, fall misses in a row down); no bound.
			lv.Probing = time.Time{}
		case probed && lv.Probing.IsZero():
			lv.Probing = d.now
		}
		if s := d.settle(name); s > 0 && !lv.Probing.IsZero() && !d.now.Before(lv.Probing.Add(s)) {
			lv.Observed, lv.Probing = Down, time.Time{}
			settleNote = "; no probe answer within " + s.String() + " of probing (fall misses and the timeout): down"
		}
	}

	ov, ok := winningOverride(d.overrides, name, d.now)
	switch {
	case ok:
		lv.Override = ov.Action
		lv.State = ov.Action.state()
		lv.Reason = ov.describe()
	case lv.Suppressed:
		lv.State = Down
	default:
		lv.State = lv.Observed
	}

	if lv.State != prevState || !had {
		lv.Since = d.now
	} else {
		lv.Since = p.Since
	}
	if ok {
		return lv
	}
	// The reason changes only when its cause does: the state, suppression,
	// or an override ending. Otherwise it stays as written.
	if had && lv.State == p.State && lv.Suppressed == p.Suppressed && p.Override == "" {
		lv.Reason = p.Reason
		return lv
	}
	var b strings.Builder
	if had && p.Override != "" {
		b.WriteString(endedOverride(d.overrides, name, p.Override, d.now))
		b.WriteString("; ")
	}
	if lv.Suppressed {
		b.WriteString("flap damping: penalty ")
		b.WriteString(fmtNum(lv.Penalty))
		b.WriteString(" > ")
		b.WriteString(fmtNum(d.pol.Damping.Suppress))
		b.WriteString(", held down until it decays to ")
		b.WriteString(fmtNum(d.pol.Damping.Reuse))
		b.WriteString("; ")
	} else {
		b.WriteString(dampNote)
	}
	d.describeViews(&b, name, t, prevObserved, lv.Observed)
	b.WriteString(settleNote)
	lv.Reason = b.String()
	return lv
}

// probed reports whether an alive node reports on link (its prober runs,
// whatever it has seen so far), and whether one has had an answer.
func (d *decider) probed(link string) (probed, answered bool) {
	for _, n := range d.alive {
		if o, ok := n.view.Links[link]; ok {
			probed = true
			answered = answered || !o.LastOK.IsZero()
		}
	}
	return probed, answered
}

// settle is link's Settle bound (0: none).
func (d *decider) settle(link string) time.Duration {
	for _, lp := range d.pol.Links {
		if lp.Name == link {
			return lp.Settle
		}
	}
	return 0
}

// settling reports whether link i is still unknown but kept in its place:
// it carried traffic in the previous verdict (or there is none yet, a
// fresh start's fail-open), so it keeps doing so until its probes settle.
func (d *decider) settling(lvs []LinkVerdict, i int) bool {
	if lvs[i].State != Unknown {
		return false
	}
	return len(d.prev.Links) == 0 || slices.Contains(d.prev.Active, d.pol.Links[i].Name)
}

// describeViews writes each known node's view of link and how the mode
// combined their tally t, e.g. "fw1 down (3/3 targets lost), fw2 down: any: no alive
// node sees it up".
func (d *decider) describeViews(b *strings.Builder, link string, t tally, prevObserved, observed State) {
	for i, n := range d.nodes {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
		nv := d.obs[n]
		if !nv.Alive {
			b.WriteString(" not alive")
			continue
		}
		o, ok := nv.Links[link]
		if !ok {
			b.WriteString(" has no view")
			continue
		}
		b.WriteString(" ")
		b.WriteString(o.State.String())
		if o.State != Down {
			continue
		}
		if len(o.Targets) > 0 {
			lost := 0
			for _, t := range o.Targets {
				if t.State != Up {
					lost++
				}
			}
			b.WriteString(" (" + itoa(lost) + "/" + itoa(len(o.Targets)) + " targets lost)")
		} else if o.Loss > 0 {
			b.WriteString(" (loss " + fmtNum(o.Loss) + "%)")
		}
	}
	if len(d.nodes) > 0 {
		b.WriteString(": ")
	}
	if t.known() == 0 {
		if observed == Unknown {
			b.WriteString("no alive node has a view: no data yet")
		} else {
			b.WriteString("no alive node has a view: keeping " + observed.String())
		}
		return
	}
	b.WriteString(string(d.mode))
	b.WriteString(": ")
	switch d.mode {
	case Majority:
		switch {
		case 2*t.up > t.known():
			b.WriteString(itoa(t.up) + " of " + itoa(t.known()) + " views up")
		case 2*t.down > t.known():
			b.WriteString(itoa(t.down) + " of " + itoa(t.known()) + " views down")
		case prevObserved == Up || prevObserved == Down:
			b.WriteString("tie " + itoa(t.up) + "-" + itoa(t.down) + ", keeping " + prevObserved.String())
		default:
			b.WriteString("tie " + itoa(t.up) + "-" + itoa(t.down) + " and no earlier verdict: up (fail-open)")
		}
	case All:
		if t.down > 0 {
			b.WriteString(itoa(t.down) + " of " + itoa(t.known()) + " views down")
		} else {
			b.WriteString("no alive node sees it down")
		}
	default:
		if t.up > 0 {
			b.WriteString(itoa(t.up) + " of " + itoa(t.known()) + " views up")
		} else {
			b.WriteString("no alive node sees it up")
		}
	}
}

// active chooses the links that carry balanced traffic: the up links of the
// lowest tier that has one. With no link up it follows pol.AllDown, except
// that before any data (every link Unknown) every link is used, whatever
// all_down says: a starting cluster never starts from "all down".
func (d *decider) active(lvs []LinkVerdict) (active []string, allDown bool, reason string) {
	// A link that is up, or still settling in the place it had, is usable;
	// the lowest tier with an up link, or a usable one, carries the balance.
	best, lowest := 0, 0
	found, noData := false, true
	var settling []string
	for i, lp := range d.pol.Links {
		if i == 0 || lp.Tier < lowest {
			lowest = lp.Tier
		}
		if lvs[i].State != Unknown {
			noData = false
		}
		if (lvs[i].State == Up || d.settling(lvs, i)) && (!found || lp.Tier < best) {
			best, found = lp.Tier, true
		}
	}
	if found && !noData {
		for i, lp := range d.pol.Links {
			if lp.Tier != best {
				continue
			}
			if lvs[i].State == Up {
				active = append(active, lp.Name)
			} else if d.settling(lvs, i) {
				active = append(active, lp.Name)
				settling = append(settling, lp.Name)
			}
		}
		note := ""
		if len(settling) > 0 {
			note = " (not settled yet, kept in place: " + strings.Join(settling, ", ") + ")"
		}
		if best == lowest {
			return active, false, "tier " + itoa(best) + " in use: " + strings.Join(active, ", ") + note
		}
		return active, false, "tier " + itoa(best) + " takes over: no link of a lower tier is up; in use: " + strings.Join(active, ", ") + note
	}

	every := make([]string, 0, len(d.pol.Links))
	for _, lp := range d.pol.Links {
		every = append(every, lp.Name)
	}
	switch {
	case noData:
		return every, true, "no data yet: using every link (fail-open)"
	case d.pol.AllDown == AllDownNone:
		return []string{}, true, "no link up; all_down=none: no link carries traffic"
	case d.pol.AllDown == AllDownKeep:
		var kept []string
		for _, lp := range d.pol.Links {
			if slices.Contains(d.prev.Active, lp.Name) {
				kept = append(kept, lp.Name)
			}
		}
		// Still all down under keep, same links: nothing to tell anew.
		if d.prev.AllDown && strings.HasPrefix(d.prev.ActiveReason, keepReason) &&
			len(kept) > 0 && slices.Equal(kept, d.prev.Active) {
			return kept, true, d.prev.ActiveReason
		}
		if len(kept) > 0 {
			return kept, true, keepReason + ": keeping " + strings.Join(kept, ", ") + ", the links in use before"
		}
		return every, true, keepReason + " but no earlier verdict had a link in use: using every link (fail-open)"
	default:
		return every, true, "no link up; all_down=all: using every link (fail-open)"
	}
}

const keepReason = "no link up; all_down=keep"

// impaired lists alive nodes that see a link down while its verdict is Up,
// sorted by node, then link.
func (d *decider) impaired(lvs []LinkVerdict) []Impairment {
	var out []Impairment
	for _, n := range d.alive {
		for i, lp := range d.pol.Links {
			if lvs[i].State == Up && n.view.Links[lp.Name].State == Down {
				out = append(out, Impairment{Node: n.name, Link: lp.Name})
			}
		}
	}
	slices.SortFunc(out, func(a, b Impairment) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Link, b.Link))
	})
	return out
}

// evidence is every known node's view of link, sorted by node.
func (d *decider) evidence(link string) []Evidence {
	ev := make([]Evidence, 0, len(d.nodes))
	for _, n := range d.nodes {
		nv := d.obs[n]
		o := nv.Links[link]
		ev = append(ev, Evidence{
			Node:    n,
			Alive:   nv.Alive,
			State:   o.State,
			Loss:    o.Loss,
			RTT:     o.RTT,
			LastOK:  o.LastOK,
			Targets: slices.Clone(o.Targets),
		})
	}
	return ev
}
