package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gwstated/cluster"
)

// Bound is how long after the last fault ended every alive firewall must
// hold the rules of a verdict that matches the links, derived from the
// configuration: a link comes back after rise probes (rise·interval +
// timeout) or goes down after fall (fall·interval + timeout); a killed or
// stopped leader's etcd session expires (session TTL) and a new leader is
// elected and commits; gossip carries observations within a push-pull
// interval at worst; the dir backend's apply is milliseconds. Slack covers
// process start (agent restart: config load, etcd dial) on a loaded host.
func Bound(interval, timeout time.Duration, fall, rise int, sessionTTL, pushPull, dialTimeout, slack time.Duration) time.Duration {
	detect := time.Duration(max(fall, rise))*interval + timeout
	return detect + 2*sessionTTL + pushPull + dialTimeout + slack
}

// Observed is one reading of the cluster by the checker.
type Observed struct {
	Time       time.Time
	VerdictSeq uint64
	Up         []string          // links the verdict has up, config order
	Active     []string          // the verdict's active links
	Drained    []string          // links with a drain override
	Applied    map[string]string // alive firewall -> applied ruleset hash
	Working    []string          // links that really work now (no cut, loss, or one-sided cut active)
	Expected   map[string]string // firewall -> the hash the verdict's up set renders to
}

// Converged reports why o is not converged ("" when it is): every alive
// firewall holds the same rules, equal to what the verdict renders, and
// the verdict has up exactly the links that really work and are not drained.
func Converged(o Observed) string {
	var why []string
	for _, fw := range sortedKeys(o.Applied) {
		if o.Applied[fw] != o.Expected[fw] {
			why = append(why, fmt.Sprintf("%s holds %s, the verdict (seq %d, up %v) renders %s", fw, cluster.ShortHash(o.Applied[fw]), o.VerdictSeq, o.Up, cluster.ShortHash(o.Expected[fw])))
		}
	}
	want := slices.DeleteFunc(slices.Clone(o.Working), func(l string) bool { return slices.Contains(o.Drained, l) })
	if !slices.Equal(want, o.Up) {
		why = append(why, fmt.Sprintf("verdict seq %d has up %v; links that work (not drained): %v", o.VerdictSeq, o.Up, want))
	}
	return strings.Join(why, "; ")
}

// AllDropped reports a violation of "never every link dropped while one
// really works (unless drained)": stable are the links that have worked
// for longer than the bound (no fault on them since), not drained.
func AllDropped(o Observed, stable []string) string {
	if len(o.Active) > 0 {
		return ""
	}
	var ok []string
	for _, l := range stable {
		if !slices.Contains(o.Drained, l) {
			ok = append(ok, l)
		}
	}
	if len(ok) == 0 {
		return ""
	}
	return fmt.Sprintf("verdict seq %d carries traffic on no link while %v work", o.VerdictSeq, ok)
}

// AuditProblems checks the audit log: every transition record has
// evidence, and no (verdict seq, link) pair has two transition records;
// every transition between consecutive verdicts a checker saw (seen: seq
// -> link -> state) has a record.
func AuditProblems(records []cluster.AuditRecord, seen map[uint64]map[string]string) []string {
	var out []string
	type key struct {
		seq  uint64
		link string
	}
	have := map[key]int{}
	for _, r := range records {
		if r.Kind != cluster.KindTransition {
			continue
		}
		have[key{r.VerdictSeq, r.Link}]++
		if len(r.Evidence) == 0 && !r.WithoutEtcd {
			out = append(out, fmt.Sprintf("audit %d (verdict %d, %s %s→%s) has no evidence", r.Seq, r.VerdictSeq, r.Link, r.From, r.To))
		}
	}
	for k, n := range have {
		if n > 1 {
			out = append(out, fmt.Sprintf("verdict %d link %s has %d transition records", k.seq, k.link, n))
		}
	}
	if len(records) == 0 {
		return out
	}
	oldest := records[0].VerdictSeq
	seqs := sortedKeys(seen)
	for i := 1; i < len(seqs); i++ {
		prev, cur := seen[seqs[i-1]], seen[seqs[i]]
		if seqs[i] != seqs[i-1]+1 || seqs[i] <= oldest {
			continue // not consecutive (a verdict we did not see), or trimmed
		}
		for link, st := range cur {
			if prev[link] != st && have[key{seqs[i], link}] == 0 {
				out = append(out, fmt.Sprintf("verdict %d: %s %s→%s has no audit record", seqs[i], link, prev[link], st))
			}
		}
	}
	slices.Sort(out)
	return out
}

// Growth reports a resource that grew beyond factor× its value after the
// first minute ("" when within).
func Growth(what string, first, end, factor float64) string {
	if first <= 0 || end <= first*factor {
		return ""
	}
	return fmt.Sprintf("%s grew from %.0f to %.0f (more than %.1f×)", what, first, end, factor)
}

func sortedKeys[K interface{ ~string | ~uint64 }, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
