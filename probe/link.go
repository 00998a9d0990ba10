package probe

import (
	"net/netip"
	"time"

	"gwstated/linkstate"
)

// Link aggregates a link's targets (k of n): the link is Up while at least
// Need targets are Up, Down once so many are Down that Need can no longer
// be met, Unknown otherwise (e.g. at start, before enough targets have
// decided). Pure: the time is passed in.
type Link struct {
	Name    string
	Need    int
	Addrs   []netip.Addr
	Targets []*Target
	state   linkstate.State
	since   time.Time
}

// NewLink returns a link in state Unknown whose targets all use p.
func NewLink(name string, need int, addrs []netip.Addr, p Params) *Link {
	l := &Link{Name: name, Need: need, Addrs: addrs}
	for range addrs {
		l.Targets = append(l.Targets, NewTarget(p))
	}
	return l
}

// Update recomputes the link's state from its targets' and reports whether
// it changed.
func (l *Link) Update(at time.Time) bool {
	up, down := 0, 0
	for _, t := range l.Targets {
		switch s, _, _ := t.State(); s {
		case linkstate.Up:
			up++
		case linkstate.Down:
			down++
		}
	}
	s := linkstate.Unknown
	switch {
	case up >= l.Need:
		s = linkstate.Up
	case down > len(l.Targets)-l.Need:
		s = linkstate.Down
	}
	if s == l.state {
		return false
	}
	l.state, l.since = s, at
	return true
}

// State returns the link's state and when it last changed.
func (l *Link) State() (linkstate.State, time.Time) { return l.state, l.since }

// Observation describes the link now (Seq is left to the emitter). Loss and
// RTT are the worst of the targets that decided the state: the up targets
// when up, the down ones when down, all of them when unknown.
func (l *Link) Observation() linkstate.Observation {
	o := linkstate.Observation{Link: l.Name, State: l.state, Since: l.since}
	o.Targets = make([]linkstate.TargetObs, len(l.Targets))
	for i, t := range l.Targets {
		s, _, why := t.State()
		rtt, _ := t.RTT()
		to := linkstate.TargetObs{Addr: l.Addrs[i], State: s, Loss: t.Loss(), RTT: rtt,
			Misses: t.Misses(), Probes: t.Results(), Reason: string(why)}
		o.Targets[i] = to
		if t.LastOK().After(o.LastOK) {
			o.LastOK = t.LastOK()
		}
		if l.state == linkstate.Unknown || s == l.state {
			o.Loss = max(o.Loss, to.Loss)
			o.RTT = max(o.RTT, to.RTT)
		}
	}
	return o
}
