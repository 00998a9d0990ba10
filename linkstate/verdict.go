package linkstate

import (
	"slices"
	"strconv"
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
