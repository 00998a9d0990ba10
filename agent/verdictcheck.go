package agent

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/linkstate"
)

// checkVerdict keeps what reaches the renderer to the up/down state of
// links this node's configuration defines. A verdict whose active set
// names a link the configuration does not define is refused (the rules in
// force stay: carrying traffic on a link this node cannot render would be
// guessing); links in Links or Impaired that the configuration does not
// define are dropped. problem is "" when the verdict was clean.
func checkVerdict(cfg *config.Config, rec cluster.VerdictRecord) (out cluster.VerdictRecord, problem string, refuse bool) {
	known := make(map[string]bool, len(cfg.Links))
	for _, l := range cfg.Links {
		known[l.Name] = true
	}
	var badActive []string
	for _, name := range rec.Active {
		if !known[name] {
			badActive = append(badActive, name)
		}
	}
	if len(badActive) > 0 {
		return rec, fmt.Sprintf("verdict seq %d from %s makes active links this node's configuration does not define: %s; refused, the rules in force stay",
			rec.Seq, rec.Leader, quoteAll(badActive)), true
	}
	var dropped []string
	for name := range rec.Links {
		if !known[name] {
			dropped = append(dropped, name)
		}
	}
	for _, im := range rec.Impaired {
		if !known[im.Link] && !slices.Contains(dropped, im.Link) {
			dropped = append(dropped, im.Link)
		}
	}
	if len(dropped) == 0 {
		return rec, "", false
	}
	slices.Sort(dropped)
	out = rec
	out.Links = maps.Clone(rec.Links)
	for _, name := range dropped {
		delete(out.Links, name)
	}
	out.Impaired = slices.DeleteFunc(slices.Clone(rec.Impaired), func(im linkstate.Impairment) bool { return !known[im.Link] })
	return out, fmt.Sprintf("verdict seq %d from %s names links this node's configuration does not define: %s; they are ignored",
		rec.Seq, rec.Leader, quoteAll(dropped)), false
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// acceptVerdict runs checkVerdict on a delivered verdict and logs each
// distinct problem once. ok is false when the verdict is refused.
func (a *agent) acceptVerdict(rec cluster.VerdictRecord) (cluster.VerdictRecord, bool) {
	out, problem, refuse := checkVerdict(a.cfg, rec)
	if problem == "" {
		a.verdictProblem = ""
		return out, true
	}
	// The same leader's next verdicts carry the same foreign names: log
	// when the problem changes, not on every verdict.
	key := problem[strings.Index(problem, " from "):]
	if key != a.verdictProblem {
		a.verdictProblem = key
		a.log.Error(problem, "seq", rec.Seq, "leader", rec.Leader)
	}
	return out, !refuse
}
