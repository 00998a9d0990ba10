package linkstate

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Equal reports whether v and o decide the same: every field but Seq and
// Time, with times compared as instants (time.Time.Equal).
func (v Verdict) Equal(o Verdict) bool {
	if v.AllDown != o.AllDown || v.ActiveReason != o.ActiveReason ||
		!slices.Equal(v.Active, o.Active) || !slices.Equal(v.Impaired, o.Impaired) ||
		len(v.Links) != len(o.Links) {
		return false
	}
	for name, lv := range v.Links {
		ol, ok := o.Links[name]
		if !ok || !lv.Equal(ol) {
			return false
		}
	}
	return true
}

// Equal reports whether two link verdicts are the same, times compared as
// instants.
func (lv LinkVerdict) Equal(o LinkVerdict) bool {
	return lv.State == o.State && lv.Observed == o.Observed &&
		lv.Since.Equal(o.Since) && lv.Reason == o.Reason &&
		lv.Penalty == o.Penalty && lv.PenaltyAt.Equal(o.PenaltyAt) &&
		lv.Suppressed == o.Suppressed && lv.Override == o.Override &&
		lv.Probing.Equal(o.Probing)
}

// Up reports whether the verdict on link is Up (whether or not its tier is
// the one in use).
func (v Verdict) Up(link string) bool {
	return v.Links[link].State == Up
}

// IsActive reports whether link carries balanced traffic (is in Active).
func (v Verdict) IsActive(link string) bool {
	return slices.Contains(v.Active, link)
}

func itoa(i int) string { return strconv.Itoa(i) }

// fmtNum formats a penalty or a percentage without decimals.
func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', 0, 64) }

// ErrUnknownLink: a verdict names a link the configuration lacks (a
// verdict from another config version, or a corrupt record).
var ErrUnknownLink = errors.New("verdict names a link the configuration lacks")

// Use says, for each of links (the configured links, in order), whether
// the verdict keeps it ready (Up, or Active: its NAT and own traffic stay)
// and whether it is Active (carries balanced traffic). A verdict naming a
// link that is not in links is an error wrapping ErrUnknownLink that names
// them all. Both data planes render from this.
func (v Verdict) Use(links []string) (ready, active []bool, err error) {
	index := make(map[string]int, len(links))
	for i, l := range links {
		index[l] = i
	}
	ready, active = make([]bool, len(links)), make([]bool, len(links))
	var unknown []string
	for name, lv := range v.Links {
		i, ok := index[name]
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		if lv.State == Up {
			ready[i] = true
		}
	}
	for _, name := range v.Active {
		i, ok := index[name]
		if !ok {
			if !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
			continue
		}
		ready[i], active[i] = true, true
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		quoted := make([]string, len(unknown))
		for i, s := range unknown {
			quoted[i] = strconv.Quote(s)
		}
		return nil, nil, fmt.Errorf("%w: %s (configured links: %s)", ErrUnknownLink,
			strings.Join(quoted, ", "), strings.Join(links, ", "))
	}
	return ready, active, nil
}
