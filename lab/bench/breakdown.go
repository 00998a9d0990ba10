package main

// The chain of one cut, hop by hop, from what the agents already publish:
// the audit record of the transition (gwctl history --json: the leader's
// Decide time and each node's last answer, evidence[].last_ok) and each
// firewall's /metrics read before and after the cut:
// gwstated_link_observed_change_timestamp_seconds{link="isp1"} (the
// prober saw the link down) and the histogram
// gwstated_apply_phase_seconds{phase} (the delta of its _sum over one
// observation is the cut's value of that phase).
//
//	last answer → link down     each firewall's prober (detection)
//	last answer → Decide        the leader decided (gossip, decide loop)
//	Decide → verdict            the fenced etcd commit and the watch, per node (phase commit)
//	verdict → apply start       the agent loop (phase queue)
//	apply start → table in      nft table loaded (one transaction; phase table)
//	apply start → conntrack     the dead link's entries deleted (phase conntrack)
//	apply start → apply end     the rest: default route, rule deletes (phase end)
//	last answer → table in      the whole chain, to the rules that move flows
//
// A phase observed more than once between the two reads (another apply
// that changed the rules) is left out for that cut. Clocks: every process
// runs on this machine, one clock.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"gwstated/cluster"
	"gwstated/lab"
	"gwstated/linkstate"
)

// hop is one row of the breakdown.
type hop struct {
	name string
	d    []time.Duration
}

type breakdown struct {
	hops []*hop
}

func (b *breakdown) add(name string, d time.Duration) {
	for _, h := range b.hops {
		if h.name == name {
			h.d = append(h.d, d)
			return
		}
	}
	b.hops = append(b.hops, &hop{name: name, d: []time.Duration{d}})
}

const phaseMetric = "gwstated_apply_phase_seconds"

// snapshot is what the breakdown reads of one firewall's /metrics.
type snapshot struct {
	down       time.Time          // gwstated_link_observed_change_timestamp_seconds{link="isp1"}
	sum, count map[string]float64 // gwstated_apply_phase_seconds_{sum,count} per phase
}

func readSnapshot(ctx context.Context, c *lab.Cluster, fw string) (snapshot, error) {
	m, err := c.Metrics(ctx, fw)
	if err != nil {
		return snapshot{}, err
	}
	s := snapshot{down: lab.UnixSeconds(m[`gwstated_link_observed_change_timestamp_seconds{link="isp1"}`]),
		sum: map[string]float64{}, count: map[string]float64{}}
	for _, ph := range []string{"commit", "queue", "table", "conntrack", "end"} {
		s.sum[ph] = m[phaseMetric+`_sum{phase="`+ph+`"}`]
		s.count[ph] = m[phaseMetric+`_count{phase="`+ph+`"}`]
	}
	return s, nil
}

// cutReads are the firewalls' snapshots around each cut: before (the last
// read after the rules with every link were in force) and after (once the
// rules without isp1 are in force on both), keyed by the cut's time.
type cutReads struct {
	c      *lab.Cluster
	before map[string]snapshot
	cuts   map[time.Time][2]map[string]snapshot
}

func newCutReads(c *lab.Cluster) *cutReads {
	return &cutReads{c: c, cuts: map[time.Time][2]map[string]snapshot{}}
}

func (r *cutReads) read(ctx context.Context) (map[string]snapshot, error) {
	out := map[string]snapshot{}
	for _, fw := range []string{lab.FW1, lab.FW2} {
		s, err := readSnapshot(ctx, r.c, fw)
		if err != nil {
			return nil, err
		}
		out[fw] = s
	}
	return out, nil
}

// settled reads the firewalls with every link in force (before the next cut).
func (r *cutReads) settled(ctx context.Context) error {
	s, err := r.read(ctx)
	r.before = s
	return err
}

// cutDone reads the firewalls once the cut at cut is in force.
func (r *cutReads) cutDone(ctx context.Context, cut time.Time) error {
	s, err := r.read(ctx)
	if err != nil || r.before == nil {
		return err
	}
	r.cuts[cut] = [2]map[string]snapshot{r.before, s}
	r.before = nil
	return nil
}

// phase is the one observation of ph between before and after.
func phase(before, after snapshot, ph string) (time.Duration, bool) {
	if after.count[ph]-before.count[ph] != 1 {
		return 0, false
	}
	return time.Duration((after.sum[ph] - before.sum[ph]) * float64(time.Second)), true
}

// measureBreakdown adds the hops of every cut at cuts (isp1 going down)
// to b, from c's audit log and the metrics reads.
func measureBreakdown(ctx context.Context, c *lab.Cluster, cuts []time.Time, reads *cutReads, b *breakdown) error {
	out, err := c.Gwctl(ctx, "history", "--link", "isp1", "--limit", "0", "--json")
	if err != nil {
		return err
	}
	var hist []cluster.AuditRecord
	if err := json.Unmarshal([]byte(out), &hist); err != nil {
		return fmt.Errorf("gwctl history --json: %w", err)
	}
	slices.SortFunc(hist, func(a, b cluster.AuditRecord) int { return a.Time.Compare(b.Time) })
	for _, cut := range cuts {
		rd, ok := reads.cuts[cut]
		if !ok {
			continue
		}
		i := slices.IndexFunc(hist, func(r cluster.AuditRecord) bool {
			return r.Kind == cluster.KindTransition && r.To == linkstate.Down && r.Time.After(cut)
		})
		if i < 0 {
			continue
		}
		rec := hist[i]
		var last time.Time
		for _, e := range rec.Evidence {
			if e.LastOK.After(last) {
				last = e.LastOK
			}
		}
		if last.IsZero() || last.After(rec.Time) {
			continue
		}
		decide := rec.Time.Sub(last)
		b.add("last answer → Decide (leader)", decide)
		for _, fw := range []string{lab.FW1, lab.FW2} {
			before, after := rd[0][fw], rd[1][fw]
			if after.down.After(before.down) && after.down.After(last) {
				b.add("last answer → link down in the prober", after.down.Sub(last))
			}
			commit, ok := phase(before, after, "commit")
			if !ok {
				continue
			}
			b.add("Decide → verdict on the node (commit, watch)", commit)
			queue, ok := phase(before, after, "queue")
			if !ok {
				continue
			}
			b.add("verdict → apply start (agent loop)", queue)
			toStart := decide + commit + queue
			if t, ok := phase(before, after, "table"); ok {
				b.add("apply start → nft table in", t)
				b.add("last answer → nft table in (whole chain)", toStart+t)
			}
			if t, ok := phase(before, after, "conntrack"); ok {
				b.add("apply start → conntrack entries deleted", t)
			}
			if t, ok := phase(before, after, "end"); ok {
				b.add("apply start → apply end (all writes)", t)
				b.add("last answer → apply end", toStart+t)
			}
		}
	}
	return nil
}

func printBreakdown(w io.Writer, cols []*trafficColumn) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range cols {
		if c.breakdown == nil || len(c.breakdown.hops) == 0 {
			continue
		}
		fmt.Fprintf(tw, "one cut, hop by hop: %s (p50 / p99, n)\t\t\n", c.name)
		for _, h := range c.breakdown.hops {
			fmt.Fprintf(tw, "  %s\t%s / %s\t(n=%d)\n", h.name, fmtD(pct(h.d, 50)), fmtD(pct(h.d, 99)), len(h.d))
		}
	}
	tw.Flush()
}
