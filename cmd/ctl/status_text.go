package main

import (
	"encoding/json"
	"fmt"
	"gwstated/cluster"
	"gwstated/linkstate"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

func printStatusJSON(w io.Writer, s Status, _ time.Time) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		// Every field is a plain value; this cannot fail for valid states.
		fmt.Fprintf(w, "{\"health\": %q, \"error\": %q}\n", healthUnreachable, err.Error())
		return
	}
	w.Write(append(b, '\n'))
}

// printStatusText prints the status as tables: the summary, nodes, links
// and their views, overrides, then the warnings.
func printStatusText(w io.Writer, s Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	printSummary(tw, s, now)
	printNodes(tw, s.Nodes, now)
	printLinks(tw, s.Links, now)
	printOverrides(tw, s.Overrides, now)
	tw.Flush()
	if len(s.Warnings) > 0 {
		fmt.Fprintln(w)
	}
	for _, wn := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
}

// printSummary: cluster, etcd, agent leader, verdict.
func printSummary(tw io.Writer, s Status, now time.Time) {
	fmt.Fprintf(tw, "cluster\t%s (%s)\n", s.Cluster, s.Health)

	var mem []string
	for _, m := range s.Etcd.Members {
		mem = append(mem, m.Name)
	}
	ok := 0
	for _, e := range s.Etcd.Endpoints {
		if e.OK {
			ok++
		}
	}
	leader := s.Etcd.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(tw, "etcd\t%d member(s) %s, raft leader %s; %d/%d endpoint(s) answer\n",
		len(s.Etcd.Members), strings.Join(mem, ","), leader, ok, len(s.Etcd.Endpoints))
	if s.Leader != nil {
		since := ""
		if !s.Leader.Since.IsZero() {
			since = fmt.Sprintf(" since %s (%s)", fmtTime(s.Leader.Since, now), ago(s.Leader.Since, now))
		}
		fmt.Fprintf(tw, "leader\t%s%s\n", s.Leader.Node, since)
	} else {
		fmt.Fprintf(tw, "leader\tnone\n")
	}
	if v := s.Verdict; v != nil {
		fmt.Fprintf(tw, "verdict\tseq %d at %s by %s; active %s\n", v.Seq, fmtTime(v.Time, now), dash(v.Leader), dash(strings.Join(v.Active, ",")))
	} else {
		fmt.Fprintf(tw, "verdict\tnone\n")
	}
}

func printNodes(tw io.Writer, nodes []NodeStatus, now time.Time) {
	if len(nodes) > 0 {
		fmt.Fprintf(tw, "\nNODE\tGOSSIP\tCARP\tMODE\tAPPLIED\tRULESET\tCONFIG\tREPORTED\n")
		for _, n := range nodes {
			name := n.Name
			if n.Leader {
				name += "*"
			}
			if n.Witness {
				name += " (witness)"
			}
			var carp []string
			for _, c := range n.CARP {
				carp = append(carp, c.Interface+"="+c.State)
			}
			applied, hash := "-", "-"
			if n.Applied != nil {
				applied = fmt.Sprint(n.Applied.Seq)
				if n.Applied.Error != "" {
					applied += "!"
				}
				hash = cluster.ShortHash(n.Applied.Hash)
			}
			reported := "-"
			if !n.ReportedAt.IsZero() {
				reported = ago(n.ReportedAt, now)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, n.Gossip, dash(strings.Join(carp, ",")),
				dash(n.Mode), applied, hash, dash(cluster.ShortHash(n.ConfigHash)), reported)
		}
	}

}

func printLinks(tw io.Writer, links []LinkStatus, now time.Time) {
	if len(links) > 0 {
		fmt.Fprintf(tw, "\nLINK\tVERDICT\tSINCE\tOVERRIDE\tREASON\n")
		for _, l := range links {
			state := l.State.String()
			if l.Active {
				state += "*"
			}
			if l.Suppressed {
				state += " (damped)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Name, state, fmtTime(l.Since, now), dash(string(l.Override)), dash(l.Reason))
		}
		fmt.Fprintf(tw, "\nLINK\tNODE\tSTATE\tLOSS\tRTT\tLAST OK\n")
		for _, l := range links {
			for _, vw := range l.Views {
				lastOK := "-"
				if !vw.LastOK.IsZero() {
					lastOK = ago(vw.LastOK, now)
				}
				loss := fmtLoss(vw.Loss)
				if vw.State == linkstate.Unknown {
					loss = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", l.Name, vw.Node, vw.State, loss, fmtRTT(vw.RTTms), lastOK)
			}
		}
	}

}

func printOverrides(tw io.Writer, overrides []OverrideStatus, now time.Time) {
	if len(overrides) > 0 {
		fmt.Fprintf(tw, "\nOVERRIDE\tACTION\tBY\tSINCE\tUNTIL\tREASON\n")
		for _, o := range overrides {
			until := "-"
			if !o.Until.IsZero() {
				until = fmtTime(o.Until, now)
				if o.Expired {
					until += " (expired)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.Link, o.Action, dash(o.By), fmtTime(o.Since, now), until, dash(o.Reason))
		}
	}
}

// timeLayout is how gwctl prints times, in the location of its clock.
const timeLayout = "2006-01-02 15:04:05"

func fmtTime(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(now.Location()).Format(timeLayout)
}

// ago says how long before now t was, to a precision a person reads at a
// glance ("4s ago", "2m10s ago", "3h12m ago", "2d4h ago"; "in 1h48m").
func ago(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in " + roughDuration(-d)
	}
	return roughDuration(d) + " ago"
}

func roughDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		days := int(d / (24 * time.Hour))
		return fmt.Sprintf("%dd%dh", days, int((d-time.Duration(days)*24*time.Hour)/time.Hour))
	}
}

func fmtLoss(p float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", p), ".0") + "%" }

func fmtRTT(ms float64) string {
	if ms == 0 {
		return "-"
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", ms), ".0") + "ms"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
