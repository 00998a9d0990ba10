package traffic

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const ms = time.Millisecond

// sendN records n sends 10 ms apart from t0 and returns their send times.
func sendN(f *Flow, n int) []time.Time {
	var at []time.Time
	for i := range n {
		at = append(at, t0.Add(time.Duration(i)*10*ms))
		f.Sent(at[i])
	}
	return at
}

func echo(seq uint64, sent []time.Time, isp string) Echo {
	return Echo{Probe: Probe{Flow: 7, Seq: seq, Sent: sent[seq].UnixNano()}, ISP: isp, Source: "198.18.1.11:4000"}
}

func TestFlowNoLoss(t *testing.T) {
	f := NewFlow(7, 10*ms)
	at := sendN(f, 100)
	for i := range 100 {
		f.Received(echo(uint64(i), at, "isp1"), at[i].Add(ms))
	}
	r := f.Report()
	if r.Sent != 100 || r.Received != 100 || r.Lost != 0 || r.Duplicates != 0 || r.Reordered != 0 {
		t.Fatalf("report %+v", r)
	}
	if r.LongestGap != 10*ms || len(r.Gaps) != 0 {
		t.Errorf("longest gap %v, gaps %v: want 10ms and none", r.LongestGap, r.Gaps)
	}
	if !r.OnlyOn("isp1") || len(r.Segments) != 1 || r.Segments[0].Packets != 100 {
		t.Errorf("segments %+v", r.Segments)
	}
}

func TestFlowGapAndMove(t *testing.T) {
	f := NewFlow(7, 10*ms)
	at := sendN(f, 100)
	// 0..39 via isp1, 40..54 lost, 55..99 via isp2
	for i := range 100 {
		switch {
		case i < 40:
			f.Received(echo(uint64(i), at, "isp1"), at[i].Add(ms))
		case i >= 55:
			f.Received(echo(uint64(i), at, "isp2"), at[i].Add(ms))
		}
	}
	r := f.Report()
	if r.Lost != 15 || r.Received != 85 {
		t.Fatalf("lost %d received %d, want 15 and 85", r.Lost, r.Received)
	}
	// from seq 39's send time to seq 55's: 16 intervals
	if r.LongestGap != 160*ms {
		t.Errorf("longest gap %v, want 160ms", r.LongestGap)
	}
	if len(r.Gaps) != 1 || r.Gaps[0].Lost != 15 || !r.Gaps[0].From.Equal(at[39]) || !r.Gaps[0].To.Equal(at[55]) || r.Gaps[0].Open {
		t.Errorf("gaps %+v", r.Gaps)
	}
	if got := r.ISPs(); !slices.Equal(got, []string{"isp1", "isp2"}) {
		t.Errorf("ISPs %v", got)
	}
	if r.OnlyOn("isp1") || r.OnlyOn("isp2") {
		t.Error("a flow that moved is reported as only on one ISP")
	}
	if n := r.LostBetween(at[45], at[46]); n != 15 {
		t.Errorf("lost between: %d, want 15", n)
	}
	if n := r.LostBetween(at[60], at[99]); n != 0 {
		t.Errorf("lost after the gap: %d, want 0", n)
	}
}

func TestFlowHeadAndTailLoss(t *testing.T) {
	f := NewFlow(7, 10*ms)
	at := sendN(f, 50)
	for i := 5; i < 30; i++ {
		f.Received(echo(uint64(i), at, "isp1"), at[i])
	}
	r := f.Report()
	if r.Lost != 25 {
		t.Fatalf("lost %d, want 25", r.Lost)
	}
	if len(r.Gaps) != 2 {
		t.Fatalf("gaps %+v: want head and tail", r.Gaps)
	}
	head, tail := r.Gaps[0], r.Gaps[1]
	if head.Lost != 5 || head.Duration != 50*ms || head.Open {
		t.Errorf("head gap %+v", head)
	}
	if tail.Lost != 20 || tail.Duration != 200*ms || !tail.Open {
		t.Errorf("tail gap %+v: want 20 lost, 200ms, open", tail)
	}
	if r.LongestGap != 200*ms {
		t.Errorf("longest %v", r.LongestGap)
	}
}

func TestFlowNothingReceived(t *testing.T) {
	f := NewFlow(7, 10*ms)
	sendN(f, 10)
	r := f.Report()
	if r.Lost != 10 || len(r.Gaps) != 1 || !r.Gaps[0].Open || r.LongestGap != 90*ms || r.OnlyOn("isp1") {
		t.Fatalf("report %+v", r)
	}
	if r := NewFlow(1, ms).Report(); r.Sent != 0 || r.LongestGap != 0 || r.Gaps != nil {
		t.Fatalf("empty flow report %+v", r)
	}
}

func TestFlowReorderAndDuplicates(t *testing.T) {
	f := NewFlow(7, 10*ms)
	at := sendN(f, 10)
	for _, seq := range []uint64{0, 2, 1, 3, 3, 5, 4, 6, 7, 8, 9, 9} {
		if !f.Received(echo(seq, at, "isp1"), at[seq].Add(5*ms)) {
			t.Fatalf("seq %d not accepted", seq)
		}
	}
	r := f.Report()
	if r.Reordered != 2 || r.Duplicates != 2 || r.Lost != 0 || r.Received != 10 {
		t.Fatalf("report %+v: want 2 reordered, 2 duplicates, no loss", r)
	}
	// reordering is not loss: no gap beyond one interval
	if r.LongestGap != 10*ms || len(r.Gaps) != 0 {
		t.Errorf("longest gap %v gaps %v", r.LongestGap, r.Gaps)
	}
}

func TestFlowIgnoresForeignEchoes(t *testing.T) {
	f := NewFlow(7, 10*ms)
	at := sendN(f, 3)
	other := echo(1, at, "isp1")
	other.Flow = 8
	unsent := Echo{Probe: Probe{Flow: 7, Seq: 3}, ISP: "isp1"}
	huge := Echo{Probe: Probe{Flow: 7, Seq: 1 << 62}, ISP: "isp1"}
	for _, e := range []Echo{other, unsent, huge} {
		if f.Received(e, t0) {
			t.Errorf("echo %+v accepted", e)
		}
	}
	if r := f.Report(); r.Received != 0 || r.Lost != 3 {
		t.Errorf("report %+v", r)
	}
}

func TestFlowProgress(t *testing.T) {
	f := NewFlow(7, 10*ms)
	at := sendN(f, 3)
	if p := f.Progress(); p.Sent != 3 || p.Received != 0 || p.ISP != "" {
		t.Fatalf("progress %+v", p)
	}
	f.Received(echo(0, at, "isp2"), at[0].Add(ms))
	p := f.Progress()
	if p.Received != 1 || p.ISP != "isp2" || !p.Last.Equal(at[0].Add(ms)) {
		t.Fatalf("progress %+v", p)
	}
}

func TestConnOutages(t *testing.T) {
	c := func(sec float64, ok bool) Conn {
		return Conn{Start: t0.Add(time.Duration(sec * float64(time.Second))), OK: ok, ISP: map[bool]string{true: "isp2"}[ok]}
	}
	// given out of order: ConnOutages sorts by start
	conns := []Conn{c(0.2, false), c(0, true), c(0.1, false), c(0.3, true), c(0.4, true), c(0.5, false), c(0.6, false)}
	got := ConnOutages(conns)
	if len(got) != 2 {
		t.Fatalf("outages %+v: want 2", got)
	}
	if o := got[0]; o.Failed != 2 || o.Span != 200*ms || o.Open || !o.From.Equal(t0.Add(100*ms)) {
		t.Errorf("first outage %+v", o)
	}
	if o := got[1]; o.Failed != 2 || !o.Open || o.Span != 100*ms {
		t.Errorf("second outage %+v: want open, 2 failed, 100ms", o)
	}
	f := FailuresOf(conns)
	if f.Failed != 4 || !f.First.Equal(t0.Add(100*ms)) || f.Window != 500*ms {
		t.Errorf("failures %+v: want 4 from 100ms over 500ms", f)
	}
	if f := FailuresOf(conns[1:2]); f.Failed != 0 || f.Window != 0 {
		t.Errorf("failures of a success: %+v", f)
	}
	if n := CountByISP(conns)["isp2"]; n != 3 {
		t.Errorf("isp2 count %d", n)
	}
	if ConnOutages(nil) != nil {
		t.Error("outages of no connections")
	}
}
