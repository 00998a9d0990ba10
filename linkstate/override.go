package linkstate

import (
	"cmp"
	"time"
)

// InForce reports whether o applies at now: its Until is zero or after now.
// An override's Since is informational; it does not delay the override.
func (o Override) InForce(now time.Time) bool {
	return o.Until.IsZero() || o.Until.After(now)
}

// state is the link state an action imposes; Unknown for an unknown action.
func (a Action) state() State {
	switch a {
	case Drain:
		return Down
	case ForceUp:
		return Up
	}
	return Unknown
}

// winningOverride is the override in force on link at now. Overrides with
// an unknown action are ignored. Should several be in force on one link the
// most recent (Since) wins, a drain before a force-up at the same Since,
// and the rest of the fields settle any remaining tie, so the choice never
// depends on the order of the slice.
func winningOverride(overrides []Override, link string, now time.Time) (Override, bool) {
	var best Override
	found := false
	for _, o := range overrides {
		if o.Link != link || o.Action.state() == Unknown || !o.InForce(now) {
			continue
		}
		if !found || compareOverrides(o, best) > 0 {
			best, found = o, true
		}
	}
	return best, found
}

// compareOverrides orders overrides of one link by precedence (greater wins).
func compareOverrides(a, b Override) int {
	rank := func(x Action) int {
		if x == Drain {
			return 1
		}
		return 0
	}
	return cmp.Or(
		a.Since.Compare(b.Since),
		cmp.Compare(rank(a.Action), rank(b.Action)),
		a.Until.Compare(b.Until),
		cmp.Compare(a.By, b.By),
		cmp.Compare(a.Reason, b.Reason),
	)
}

func (a Action) past() string {
	if a == Drain {
		return "drained"
	}
	return "forced up"
}

func byName(by string) string {
	if by == "" {
		return "an unnamed operator"
	}
	return by
}

// describe is the reason an override gives a link, e.g. "drained by alice:
// ISP maintenance until 2026-11-24T05:00:00Z".
func (o Override) describe() string {
	s := o.Action.past() + " by " + byName(o.By)
	if o.Reason != "" {
		s += ": " + o.Reason
	}
	if !o.Until.IsZero() {
		s += " until " + o.Until.UTC().Format(time.RFC3339)
	}
	return s
}

// endedOverride says how the override that was in force on link (action)
// ended: it expired (and is still listed), or it was lifted.
func endedOverride(overrides []Override, link string, action Action, now time.Time) string {
	var best Override
	found := false
	for _, o := range overrides {
		if o.Link != link || o.Action != action || o.InForce(now) {
			continue
		}
		if !found || compareOverrides(o, best) > 0 {
			best, found = o, true
		}
	}
	if !found {
		return string(action) + " lifted"
	}
	s := string(action) + " by " + byName(best.By)
	if best.Reason != "" {
		s += " (" + best.Reason + ")"
	}
	return s + " expired at " + best.Until.UTC().Format(time.RFC3339)
}
