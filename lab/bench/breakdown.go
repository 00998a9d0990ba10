package main

// The chain of one cut, hop by hop, from what the agents already record:
// the audit record of the transition (gwctl history --json: the leader's
// Decide time and each node's last answer, evidence[].last_ok) and the
// firewalls' JSON logs (the prober's "link state", the cluster's "verdict"
// as the watch delivered it, the applier's "nft table loaded", "conntrack
// entries deleted", "default route set" and the agent's "verdict applied"
// with its "took").
//
//	last answer → link down     each firewall's prober (detection)
//	last answer → Decide        the leader decided (gossip, decide loop)
//	Decide → verdict            the fenced etcd commit and the watch, per node
//	verdict → apply start       the agent loop
//	apply start → table in      nft table loaded (one transaction)
//	apply start → conntrack     the dead link's entries deleted
//	apply start → apply end     the rest: default route, rule deletes
//	last answer → table in      the whole chain, to the rules that move flows
//
// Clocks: every process runs on this machine, one clock.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
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

// logLine is one line of an agent's --log-format json log.
type logLine struct {
	Time  time.Time       `json:"time"`
	Msg   string          `json:"msg"`
	Link  string          `json:"link"`
	State json.RawMessage `json:"state"` // a string, or a list ("verdict")
	Seq   uint64          `json:"seq"`
	Took  time.Duration   `json:"took"`
}

func readLog(path string) ([]logLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && !l.Time.IsZero() {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// first is the first line after since that matches.
func first(lines []logLine, since time.Time, match func(logLine) bool) (time.Time, logLine, bool) {
	for _, l := range lines {
		if !l.Time.Before(since) && match(l) {
			return l.Time, l, true
		}
	}
	return time.Time{}, logLine{}, false
}

// measureBreakdown adds the hops of every cut at cuts (isp1 going down)
// to b, from c's audit log and agent logs.
func measureBreakdown(ctx context.Context, c *lab.Cluster, cuts []time.Time, b *breakdown) error {
	out, err := c.Gwctl(ctx, "history", "--link", "isp1", "--limit", "0", "--json")
	if err != nil {
		return err
	}
	var hist []cluster.AuditRecord
	if err := json.Unmarshal([]byte(out), &hist); err != nil {
		return fmt.Errorf("gwctl history --json: %w", err)
	}
	slices.SortFunc(hist, func(a, b cluster.AuditRecord) int { return a.Time.Compare(b.Time) })
	logs := map[string][]logLine{}
	for _, fw := range []string{lab.FW1, lab.FW2} {
		if logs[fw], err = readLog(c.AgentLog(fw)); err != nil {
			return err
		}
	}
	for _, cut := range cuts {
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
		b.add("last answer → Decide (leader)", rec.Time.Sub(last))
		for _, fw := range []string{lab.FW1, lab.FW2} {
			lines := logs[fw]
			if t, _, ok := first(lines, last, func(l logLine) bool { return l.Msg == "link state" && l.Link == "isp1" && string(l.State) == `"down"` }); ok {
				b.add("last answer → link down in the prober", t.Sub(last))
			}
			tv, _, ok := first(lines, last, func(l logLine) bool { return l.Msg == "verdict" && l.Seq == rec.VerdictSeq })
			if !ok {
				continue
			}
			b.add("Decide → verdict on the node (commit, watch)", tv.Sub(rec.Time))
			te, applied, ok := first(lines, tv, func(l logLine) bool { return l.Msg == "verdict applied" && l.Seq == rec.VerdictSeq })
			if !ok {
				continue
			}
			start := te.Add(-applied.Took)
			b.add("verdict → apply start (agent loop)", start.Sub(tv))
			if t, _, ok := first(lines, tv, func(l logLine) bool { return l.Msg == "nft table loaded" && l.Seq == rec.VerdictSeq }); ok {
				b.add("apply start → nft table in", t.Sub(start))
				b.add("last answer → nft table in (whole chain)", t.Sub(last))
			}
			if t, _, ok := first(lines, tv, func(l logLine) bool { return l.Msg == "conntrack entries deleted" && l.Seq == rec.VerdictSeq }); ok {
				b.add("apply start → conntrack entries deleted", t.Sub(start))
			}
			b.add("apply start → apply end (all writes)", applied.Took)
			b.add("last answer → apply end", te.Sub(last))
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
