package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"gwstated/cluster"
	"gwstated/linkstate"
)

// defaultHistoryPage is how many audit records one etcd request reads.
const defaultHistoryPage = 500

func init() {
	register(&command{
		name:    "history",
		args:    "[--config FILE | --endpoints URLS --cluster NAME] [--link LINK] [--since 2h|RFC3339] [--limit N] [--json]",
		summary: "show the audit log, newest first, with the evidence of each change",
		help: `History prints the cluster's audit log newest first, one sentence per
record. A transition names the link, the change, the deciding leader and
every node's evidence, then the reason:

  2026-11-24 03:12:07.412 isp1 up→down (leader fw1): fw1 100% loss to
  198.51.100.100, last ok 03:12:05.900; fw2 100% loss to 198.51.100.100 —
  every alive node sees it down

(on one line). An operator override reads
"isp1 up→down drained by alice@adm1: ISP maintenance (until ...)" and its
removal "isp1 down→up override cleared by alice@adm1". A node that sees
the link otherwise than the verdict is written "fw2 sees up, ..."; a node
that was not alive, "fw2 not alive". Records decided on gossip while etcd
was unreachable end with "[decided without etcd]".

--link keeps the records of one link. --since keeps the records at or after
a time: a duration back from now (90m, 2h, 72h) or an RFC 3339 time
(2026-11-24T03:00:00Z). --limit N stops after N records (0: no limit). The
log is read from etcd in pages of --page records, newest first, so a long
log is never loaded whole; reading stops at the first record older than
--since.

` + connHelp + `

--json prints a JSON array of the audit records, newest first, each with
the fields of the stored record (seq, kind "transition" or "override",
time, verdict_seq, leader, link, from, to, reason, evidence [{node, alive,
state, loss, rtt (nanoseconds), last_ok, targets [{addr, state, loss,
rtt}]}], by, override {link, action, reason, by, since, until},
without_etcd) and "sentence", the line the text form prints. Fields may be
added; none will be renamed or removed.

A record under audit/ that does not decode (not JSON, wrong types) does
not hide the others: every good record is shown, and each bad one is one
line on standard error naming its key ("gwctl history: skipped: corrupt
record in etcd: audit record \"/gwstated/office/audit/...\" does not
decode: ..."), so that --json output stays a valid array; the exit status
is then 1. Delete such a key with etcdctl once it has been looked at.

Exit status: 0 success, 1 every record shown but one or more could not be
decoded (see above), 2 etcd unreachable or bad command line.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) int {
			cf := addConnFlags(fs)
			link := fs.String("link", "", "show only this `link`'s records")
			since := fs.String("since", "", "show records at or after this `time` (duration back from now, or RFC 3339)")
			limit := fs.Int("limit", 50, "show at most `N` records (0: all)")
			page := fs.Int("page", defaultHistoryPage, "records read per etcd request")
			asJSON := fs.Bool("json", false, "print a JSON array (see above)")
			return func(ctx context.Context, std *stdio, args []string) int {
				if len(args) > 0 {
					fmt.Fprintf(std.err, "gwctl history: unexpected argument %q\n", args[0])
					return exitUsage
				}
				now := std.now()
				f := historyFilter{link: *link, limit: *limit}
				if *since != "" {
					t, err := parseSince(*since, now)
					if err != nil {
						fmt.Fprintf(std.err, "gwctl history: --since: %v\n", err)
						return exitUsage
					}
					f.since = t
				}
				if *limit < 0 || *page < 1 {
					fmt.Fprintf(std.err, "gwctl history: --limit must be 0 or more and --page 1 or more\n")
					return exitUsage
				}
				c, err := cf.open(ctx)
				if err != nil {
					return connExit(std, err)
				}
				defer c.Close()
				p := newHistoryPrinter(std.out, *asJSON, now)
				bad := 0
				f.corrupt = func(_ string, err error) {
					bad++
					fmt.Fprintf(std.err, "gwctl history: skipped: %v\n", err)
				}
				_, err = readAudit(ctx, c, int64(*page), f, p.print)
				p.close()
				if err != nil {
					fmt.Fprintf(std.err, "gwctl: %v\n", err)
					return exitUsage
				}
				if bad > 0 {
					fmt.Fprintf(std.err, "gwctl history: %d audit record(s) could not be decoded; every other record is shown\n", bad)
					return exitFail
				}
				return exitOK
			}
		},
	})
}

// parseSince reads a duration back from now or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration back from now must be positive", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (2h, 90m) nor an RFC 3339 time (2026-11-24T03:00:00Z)", s)
	}
	return t, nil
}

// historyFilter selects audit records.
type historyFilter struct {
	link  string
	since time.Time // zero: no bound
	limit int       // 0: no limit
	// corrupt receives each record that does not decode (nil: reading
	// stops at the first).
	corrupt func(key string, err error)
}

// readAudit calls emit for every audit record that f selects, newest
// first, page records per request (cluster.Store.ReadAudit: one snapshot
// across pages). It returns the number of requests made.
func readAudit(ctx context.Context, c *conn, page int64, f historyFilter, emit func(cluster.AuditRecord)) (int, error) {
	q := cluster.AuditQuery{Link: f.link, Since: f.since, Limit: f.limit, Page: page, RequestTimeout: c.timeout, Corrupt: f.corrupt}
	n, err := c.store().ReadAudit(ctx, q, emit)
	if err != nil {
		return n, c.storeErr("read audit log", err)
	}
	return n, nil
}

// historyPrinter writes records as they are read: lines, or the elements
// of one JSON array.
type historyPrinter struct {
	w      io.Writer
	asJSON bool
	now    time.Time
	n      int
}

func newHistoryPrinter(w io.Writer, asJSON bool, now time.Time) *historyPrinter {
	return &historyPrinter{w: w, asJSON: asJSON, now: now}
}

// historyEntry is one element of history --json.
type historyEntry struct {
	cluster.AuditRecord
	Sentence string `json:"sentence"`
}

func (p *historyPrinter) print(r cluster.AuditRecord) {
	s := auditSentence(r, p.now.Location())
	if !p.asJSON {
		fmt.Fprintln(p.w, s)
		p.n++
		return
	}
	b, err := json.MarshalIndent(historyEntry{AuditRecord: r, Sentence: s}, "  ", "  ")
	if err != nil {
		b, _ = json.Marshal(map[string]any{"seq": r.Seq, "error": err.Error()})
	}
	sep := ",\n  "
	if p.n == 0 {
		sep = "[\n  "
	}
	fmt.Fprintf(p.w, "%s%s", sep, b)
	p.n++
}

func (p *historyPrinter) close() {
	if !p.asJSON {
		return
	}
	if p.n == 0 {
		fmt.Fprintln(p.w, "[]")
		return
	}
	fmt.Fprintln(p.w, "\n]")
}

// auditSentence words one audit record as a line a person can read.
func auditSentence(r cluster.AuditRecord, loc *time.Location) string {
	var b strings.Builder
	b.WriteString(r.Time.In(loc).Format("2006-01-02 15:04:05.000"))
	b.WriteString(" ")
	b.WriteString(r.Link)
	switch {
	case r.From != r.To:
		b.WriteString(" " + r.From.String() + "→" + r.To.String())
	case r.To != linkstate.Unknown || r.Kind == cluster.KindTransition:
		b.WriteString(" " + r.To.String())
	}
	// (an override record need not carry the link's state)
	switch r.Kind {
	case cluster.KindOverride:
		if r.Override == nil {
			b.WriteString(" override cleared by " + dash(r.By))
		} else {
			verb := "drained"
			if r.Override.Action == linkstate.ForceUp {
				verb = "forced up"
			} else if r.Override.Action != linkstate.Drain {
				verb = "overridden (" + string(r.Override.Action) + ")"
			}
			b.WriteString(" " + verb + " by " + dash(r.By))
		}
		if r.Reason != "" {
			b.WriteString(": " + r.Reason)
		}
		if r.Override != nil && !r.Override.Until.IsZero() {
			b.WriteString(" (until " + r.Override.Until.In(loc).Format(timeLayout) + ")")
		}
	default:
		if r.Leader != "" {
			b.WriteString(" (leader " + r.Leader + ")")
		}
		var parts []string
		for _, e := range r.Evidence {
			parts = append(parts, evidencePhrase(e, r.To, loc))
		}
		if len(parts) > 0 {
			b.WriteString(": " + strings.Join(parts, "; "))
		}
		if r.Reason != "" {
			if len(parts) > 0 {
				b.WriteString(" — " + r.Reason)
			} else {
				b.WriteString(": " + r.Reason)
			}
		}
	}
	if r.WithoutEtcd {
		b.WriteString(" [decided without etcd]")
	}
	return b.String()
}

// evidencePhrase words one node's evidence: "fw1 100% loss to 198.51.100.100,
// last ok 03:12:05.900", "fw2 sees up, 0% loss to 198.51.100.100, rtt 12.3ms",
// "fw3 not alive".
func evidencePhrase(e linkstate.Evidence, to linkstate.State, loc *time.Location) string {
	if !e.Alive {
		return e.Node + " not alive"
	}
	var parts []string
	if e.State != to {
		parts = append(parts, "sees "+e.State.String())
	}
	if len(e.Targets) > 0 {
		for _, t := range e.Targets {
			switch {
			case t.State == linkstate.Down && t.Reason == "fall" && t.Misses > 0:
				// taken down by a run of misses: "8/8 lost to 198.51.100.100"
				parts = append(parts, fmt.Sprintf("%d/%d lost to %s", t.Misses, t.Misses, t.Addr))
			case t.Probes > 0:
				parts = append(parts, fmt.Sprintf("%s loss over %d probes to %s", fmtLoss(t.Loss), t.Probes, t.Addr))
			default:
				parts = append(parts, fmtLoss(t.Loss)+" loss to "+t.Addr.String())
			}
		}
	} else {
		parts = append(parts, fmtLoss(e.Loss)+" loss")
	}
	if e.RTT > 0 {
		parts = append(parts, "rtt "+fmtRTT(float64(e.RTT)/float64(time.Millisecond)))
	}
	if e.State == linkstate.Down && !e.LastOK.IsZero() {
		parts = append(parts, "last ok "+e.LastOK.In(loc).Format("15:04:05.000"))
	}
	return e.Node + " " + strings.Join(parts, ", ")
}
