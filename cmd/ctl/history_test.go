package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/cluster"
	"gwstated/linkstate"
)

// seedAudit writes n transition records, seq 1..n, one second apart, the
// newest at t0; odd seqs are isp1, even isp2. It writes them in
// transactions of up to 128 puts (etcd's default --max-txn-ops) and sets
// the audit counter.
func seedAudit(f *fixture, n int) {
	f.t.Helper()
	const batch = 128
	var ops []clientv3.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := f.cli.Txn(f.ctx).Then(ops...).Commit(); err != nil {
			f.t.Fatalf("seed audit: %v", err)
		}
		ops = ops[:0]
	}
	for i := 1; i <= n; i++ {
		link, from, to := "isp1", linkstate.Up, linkstate.Down
		if i%2 == 0 {
			link = "isp2"
		}
		if i%4 >= 2 {
			from, to = to, from
		}
		r := cluster.AuditRecord{
			Seq: uint64(i), Kind: cluster.KindTransition, Time: t0.Add(-time.Duration(n-i) * time.Second),
			VerdictSeq: uint64(i), Leader: "fw1", Link: link, From: from, To: to, Reason: "seeded",
			Evidence: []linkstate.Evidence{{Node: "fw1", Alive: true, State: to, Loss: 100 * float64(to-1)}},
		}
		b, err := json.Marshal(r)
		if err != nil {
			f.t.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(f.store.Keys.Audit(uint64(i)), string(b)))
		if len(ops) == batch {
			flush()
		}
	}
	ops = append(ops, clientv3.OpPut(f.store.Keys.AuditCounter(), fmt.Sprint(n)))
	flush()
}

func TestHistoryPaging(t *testing.T) {
	f := newFixture(t, "office")
	const n = 10000
	seedAudit(f, n)
	cf := &connFlags{endpoints: f.etcd.Endpoint(0), cluster: "office", timeout: 5 * time.Second}
	c, err := cf.open(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Everything, 300 a page: every record once, newest first, 34 requests.
	var seqs []uint64
	reqs, err := readAudit(f.ctx, c, 300, historyFilter{}, func(r cluster.AuditRecord) { seqs = append(seqs, r.Seq) })
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != n {
		t.Fatalf("read %d records, want %d", len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(n-i) {
			t.Fatalf("record %d has seq %d, want %d (newest first, no gap, no repeat)", i, s, n-i)
		}
	}
	if want := (n + 299) / 300; reqs != want {
		t.Errorf("%d requests for %d records in pages of 300, want %d", reqs, n, want)
	}

	// --since stops paging at the first older record: seqs 9000..10000 in
	// pages of 100 take 11 requests, not 100.
	seqs = nil
	since := t0.Add(-1000 * time.Second)
	reqs, err = readAudit(f.ctx, c, 100, historyFilter{since: since}, func(r cluster.AuditRecord) { seqs = append(seqs, r.Seq) })
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 1001 || seqs[0] != n || seqs[len(seqs)-1] != 9000 {
		t.Errorf("--since read %d records from %d to %d, want 1001 from 10000 to 9000", len(seqs), seqs[0], seqs[len(seqs)-1])
	}
	if reqs != 11 {
		t.Errorf("--since made %d requests in pages of 100, want 11", reqs)
	}

	// The command: --link and --limit, JSON.
	r := runCtl(f.ctx, fixedClock(t0), f.args("history", "--link", "isp2", "--limit", "5", "--json")...)
	if r.code != exitOK {
		t.Fatalf("exit status %d: %s", r.code, r.err)
	}
	var got []historyEntry
	if err := json.Unmarshal([]byte(r.out), &got); err != nil {
		t.Fatalf("--json output is not an array of records: %v\n%s", err, r.out)
	}
	var gotSeqs []uint64
	for _, e := range got {
		gotSeqs = append(gotSeqs, e.Seq)
		if e.Link != "isp2" || e.Sentence == "" {
			t.Errorf("record %d: link %q sentence %q, want isp2 and a sentence", e.Seq, e.Link, e.Sentence)
		}
	}
	if fmt.Sprint(gotSeqs) != "[10000 9998 9996 9994 9992]" {
		t.Errorf("--link isp2 --limit 5: seqs %v, want [10000 9998 9996 9994 9992]", gotSeqs)
	}

	// --since as a duration back from the clock, with a small page.
	r = runCtl(f.ctx, fixedClock(t0), f.args("history", "--since", "2h", "--limit", "0", "--page", "250")...)
	if r.code != exitOK {
		t.Fatalf("exit status %d: %s", r.code, r.err)
	}
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	if len(lines) != 7201 {
		t.Errorf("--since 2h printed %d lines, want 7201 (records of the last 7200 s, both ends included)", len(lines))
	}
	if want := "2026-11-24 05:00:00.000 isp2 up→down (leader fw1): fw1 100% loss — seeded"; lines[0] != want {
		t.Errorf("first line %q, want %q", lines[0], want)
	}
	if want := "2026-11-24 03:00:00.000 "; !strings.HasPrefix(lines[len(lines)-1], want) {
		t.Errorf("last line %q, want it to start %q", lines[len(lines)-1], want)
	}
}

func TestHistoryGolden(t *testing.T) {
	f := newFixture(t, "office")
	ev := func(node string, alive bool, st linkstate.State, loss float64, rtt time.Duration, lastOK time.Time, targets ...linkstate.TargetObs) linkstate.Evidence {
		return linkstate.Evidence{Node: node, Alive: alive, State: st, Loss: loss, RTT: rtt, LastOK: lastOK, Targets: targets}
	}
	tgt := func(a string, st linkstate.State, loss float64) linkstate.TargetObs {
		return linkstate.TargetObs{Addr: netip.MustParseAddr(a), State: st, Loss: loss}
	}
	at := time.Date(2026, 11, 24, 3, 12, 7, 412e6, time.UTC)
	drain := linkstate.Override{Link: "isp1", Action: linkstate.Drain, Reason: "ISP maintenance", By: "alice@adm1",
		Since: at.Add(time.Hour), Until: at.Add(3 * time.Hour)}
	records := []cluster.AuditRecord{
		{Seq: 1, Kind: cluster.KindTransition, Time: at, VerdictSeq: 41, Leader: "fw1", Link: "isp1",
			From: linkstate.Up, To: linkstate.Down, Reason: "every alive node sees it down",
			Evidence: []linkstate.Evidence{
				ev("fw1", true, linkstate.Down, 100, 0, at.Add(-2100*time.Millisecond),
					tgt("198.51.100.100", linkstate.Down, 100), tgt("9.9.9.9", linkstate.Down, 60)),
				ev("fw2", true, linkstate.Down, 100, 0, at.Add(-1500*time.Millisecond)),
				ev("fw4", true, linkstate.Down, 8, 0, at.Add(-900*time.Millisecond),
					linkstate.TargetObs{Addr: netip.MustParseAddr("198.51.100.100"), State: linkstate.Down, Loss: 8,
						Misses: 8, Probes: 100, Reason: "fall"},
					linkstate.TargetObs{Addr: netip.MustParseAddr("9.9.9.9"), State: linkstate.Down, Loss: 45,
						Misses: 1, Probes: 100, Reason: "loss"}),
				ev("fw3", false, linkstate.Unknown, 0, 0, time.Time{}),
			}},
		{Seq: 2, Kind: cluster.KindTransition, Time: at.Add(20 * time.Minute), VerdictSeq: 42, Leader: "fw2", Link: "isp1",
			From: linkstate.Down, To: linkstate.Up, Reason: "fw2 sees it up", WithoutEtcd: true,
			Evidence: []linkstate.Evidence{
				ev("fw1", true, linkstate.Down, 40, 0, at.Add(19*time.Minute)),
				ev("fw2", true, linkstate.Up, 0, 11500*time.Microsecond, at.Add(20*time.Minute), tgt("198.51.100.100", linkstate.Up, 0)),
			}},
		{Seq: 3, Kind: cluster.KindOverride, Time: drain.Since, VerdictSeq: 42, Link: "isp1", From: linkstate.Up, To: linkstate.Down,
			Reason: drain.Reason, By: drain.By, Override: &drain},
		{Seq: 4, Kind: cluster.KindOverride, Time: at.Add(2 * time.Hour), Link: "isp1", Reason: "maintenance done", By: "bob@adm2"},
	}
	for _, r := range records {
		f.put(f.store.Keys.Audit(r.Seq), r)
	}
	r := runCtl(f.ctx, fixedClock(t0), f.args("history")...)
	if r.code != exitOK {
		t.Fatalf("exit status %d: %s", r.code, r.err)
	}
	checkGolden(t, "history.golden", r.out)
	r = runCtl(f.ctx, fixedClock(t0), f.args("history", "--json")...)
	if r.code != exitOK {
		t.Fatalf("exit status %d: %s", r.code, r.err)
	}
	checkGolden(t, "history.json.golden", r.out)

	r = runCtl(f.ctx, fixedClock(t0), f.args("history", "--link", "isp9", "--json")...)
	if r.code != exitOK || r.out != "[]\n" {
		t.Errorf("no matching record: exit %d output %q, want 0 and []", r.code, r.out)
	}
}

func TestHistoryUsage(t *testing.T) {
	for _, args := range [][]string{
		{"history", "--since", "yesterday", "--cluster", "office", "--endpoints", "http://127.0.0.1:1"},
		{"history", "--limit", "-1", "--cluster", "office", "--endpoints", "http://127.0.0.1:1"},
		{"history", "extra"},
	} {
		r := runCtl(t.Context(), fixedClock(t0), args...)
		if r.code != exitUsage || r.err == "" {
			t.Errorf("%q: exit status %d stderr %q, want %d and a message", args, r.code, r.err, exitUsage)
		}
	}
}

// One undecodable record under audit/ (garbage, truncated JSON, a wrong
// type, a hostile key) does not hide the others: every good record is
// shown, each bad key is one line on stderr, and the exit status is 1.
func TestHistoryCorruptRecords(t *testing.T) {
	f := newFixture(t, "office")
	seedAudit(f, 6)
	bad := map[string]string{
		f.store.Keys.Audit(2):                           "not json at all",
		f.store.Keys.Audit(4):                           `{"seq": 4, "time": "2026-11-24T03:00:00Z", "link": `,
		f.store.Keys.Audit(5):                           `{"seq": "five"}`,
		f.store.Keys.AuditPrefix() + "x\nfw1 fake line": "{",
	}
	for k, v := range bad {
		if _, err := f.cli.Put(f.ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, asJSON := range []bool{false, true} {
		args := []string{"history"}
		if asJSON {
			args = append(args, "--json")
		}
		r := runCtl(f.ctx, fixedClock(t0), f.args(args...)...)
		if r.code != exitFail {
			t.Errorf("%v: exit status %d, want %d; stderr:\n%s", args, r.code, exitFail, r.err)
		}
		var seqs []uint64
		if asJSON {
			var h []historyEntry
			if err := json.Unmarshal([]byte(r.out), &h); err != nil {
				t.Fatalf("--json output is not a JSON array with bad records: %v\n%s", err, r.out)
			}
			for _, e := range h {
				seqs = append(seqs, e.Seq)
			}
		} else {
			for _, l := range strings.Split(strings.TrimSpace(r.out), "\n") {
				if !strings.Contains(l, "(leader fw1)") {
					t.Errorf("stdout line %q is not a record", l)
				}
				seqs = append(seqs, 0)
			}
		}
		if len(seqs) != 3 || (asJSON && (seqs[0] != 6 || seqs[1] != 3 || seqs[2] != 1)) {
			t.Errorf("%v: records %v shown, want the good ones 6, 3, 1", args, seqs)
		}
		lines := strings.Split(strings.TrimSpace(r.err), "\n")
		if len(lines) != len(bad)+1 {
			t.Errorf("%v: stderr has %d lines, want one per bad key (%d) and a summary:\n%s", args, len(lines), len(bad), r.err)
		}
		for k := range bad {
			if n := strings.Count(r.err, fmt.Sprintf("%q", k)); n != 1 {
				t.Errorf("%v: bad key %q named %d times on stderr, want once:\n%s", args, k, n, r.err)
			}
		}
		if !strings.Contains(r.err, "4 audit record(s) could not be decoded") {
			t.Errorf("%v: no summary line in stderr:\n%s", args, r.err)
		}
	}
	// --limit counts good records only; a bad one does not stop the read.
	r := runCtl(f.ctx, fixedClock(t0), f.args("history", "--json", "--limit", "2", "--page", "2")...)
	var h []historyEntry
	if err := json.Unmarshal([]byte(r.out), &h); err != nil || len(h) != 2 || h[0].Seq != 6 || h[1].Seq != 3 {
		t.Errorf("--limit 2 --page 2: %v %s, want seqs 6 and 3", err, r.out)
	}
}
