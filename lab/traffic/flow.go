package traffic

import (
	"slices"
	"time"
)

// Flow accounts one UDP stream. It is pure: the caller passes every time
// in. Not safe for concurrent use; Client serialises access.
type Flow struct {
	id        uint32
	interval  time.Duration
	sent      uint64 // sequence numbers 0..sent-1 were sent
	firstSent int64
	lastSent  int64
	seen      []bool // by seq
	recv      []arrival
	maxSeq    uint64
	any       bool
	dups      int
	reordered int
}

type arrival struct {
	seq     uint64
	sent    int64 // the echoed send time
	arrived int64
	via     string // ISP
	source  string // NAT address seen by the server
}

// NewFlow returns the accounting of flow id, which sends one datagram
// every interval.
func NewFlow(id uint32, interval time.Duration) *Flow {
	return &Flow{id: id, interval: interval}
}

// Sent records that the datagram with the next sequence number left at
// t, and returns that sequence number.
func (f *Flow) Sent(t time.Time) uint64 {
	s := f.sent
	if s == 0 {
		f.firstSent = t.UnixNano()
	}
	f.lastSent = t.UnixNano()
	f.sent++
	return s
}

// Received records an echo that arrived at t. Echoes of other flows, or of
// sequence numbers never sent, are ignored and reported false.
func (f *Flow) Received(e Echo, t time.Time) bool {
	if e.Flow != f.id || e.Seq >= f.sent {
		return false
	}
	if e.Seq >= uint64(len(f.seen)) {
		f.seen = slices.Grow(f.seen, int(e.Seq)+1-len(f.seen))[:e.Seq+1]
	}
	if f.seen[e.Seq] {
		f.dups++
		return true
	}
	f.seen[e.Seq] = true
	if f.any && e.Seq < f.maxSeq {
		f.reordered++
	}
	if !f.any || e.Seq > f.maxSeq {
		f.maxSeq = e.Seq
	}
	f.any = true
	f.recv = append(f.recv, arrival{seq: e.Seq, sent: e.Sent, arrived: t.UnixNano(), via: e.ISP, source: e.Source})
	return true
}

// Progress is a flow's state while it runs.
type Progress struct {
	Flow     uint32    `json:"flow"`
	Sent     uint64    `json:"sent"`
	Received int       `json:"received"`
	ISP      string    `json:"isp"`    // of the newest arrival
	Source   string    `json:"source"` // of the newest arrival
	Last     time.Time `json:"last"`   // arrival time of the newest echo
}

// Progress returns the flow's state now.
func (f *Flow) Progress() Progress {
	p := Progress{Flow: f.id, Sent: f.sent, Received: len(f.recv)}
	if n := len(f.recv); n > 0 {
		a := f.recv[n-1]
		p.ISP, p.Source, p.Last = a.via, a.source, time.Unix(0, a.arrived)
	}
	return p
}

// Gap is an interval in which a flow lost every datagram: From is the send
// time of the last datagram received before it (or the first send), To
// the send time of the first received after it (or the last send, with
// Open set: the flow did not resume).
type Gap struct {
	From     time.Time     `json:"from"`
	To       time.Time     `json:"to"`
	Duration time.Duration `json:"duration"`
	Lost     uint64        `json:"lost"`
	Open     bool          `json:"open,omitempty"`
}

// Segment is a run of consecutive received datagrams (in sequence order)
// carried by the same ISP and NAT source.
type Segment struct {
	ISP      string    `json:"isp"`
	Source   string    `json:"source"`
	FirstSeq uint64    `json:"first_seq"`
	LastSeq  uint64    `json:"last_seq"`
	From     time.Time `json:"from"` // send time of FirstSeq
	To       time.Time `json:"to"`   // send time of LastSeq
	Packets  int       `json:"packets"`
}

// FlowReport is the account of one flow.
type FlowReport struct {
	Flow       uint32        `json:"flow"`
	LocalPort  int           `json:"local_port,omitempty"`
	Interval   time.Duration `json:"interval"`
	Sent       uint64        `json:"sent"`
	Received   int           `json:"received"`
	Lost       uint64        `json:"lost"`
	Duplicates int           `json:"duplicates"`
	Reordered  int           `json:"reordered"`
	// LongestGap is the longest send-time distance between consecutive
	// received sequence numbers, counting a lost head or tail; with no
	// loss it is about one interval.
	LongestGap time.Duration `json:"longest_gap"`
	// Gaps are the intervals that lost at least one datagram.
	Gaps     []Gap     `json:"gaps,omitempty"`
	Segments []Segment `json:"segments,omitempty"`
}

// Report returns the flow's account. Datagrams sent are counted lost when
// no echo came, so the caller stops sending and waits for the last echoes
// before calling it.
func (f *Flow) Report() FlowReport {
	r := FlowReport{
		Flow: f.id, Interval: f.interval, Sent: f.sent, Received: len(f.recv),
		Duplicates: f.dups, Reordered: f.reordered,
	}
	r.Lost = f.sent - uint64(len(f.recv))
	byseq := slices.Clone(f.recv)
	slices.SortFunc(byseq, func(a, b arrival) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	if f.sent == 0 {
		return r
	}
	gap := func(from, to int64, lost uint64, open bool) {
		d := time.Duration(to - from)
		if d > r.LongestGap {
			r.LongestGap = d
		}
		if lost > 0 {
			r.Gaps = append(r.Gaps, Gap{From: time.Unix(0, from), To: time.Unix(0, to), Duration: d, Lost: lost, Open: open})
		}
	}
	if len(byseq) == 0 {
		gap(f.firstSent, f.lastSent, f.sent, true)
		return r
	}
	if first := byseq[0]; first.seq > 0 {
		gap(f.firstSent, first.sent, first.seq, false)
	}
	for i := 1; i < len(byseq); i++ {
		a, b := byseq[i-1], byseq[i]
		gap(a.sent, b.sent, b.seq-a.seq-1, false)
	}
	if last := byseq[len(byseq)-1]; last.seq < f.sent-1 {
		gap(last.sent, f.lastSent, f.sent-1-last.seq, true)
	}
	for _, a := range byseq {
		n := len(r.Segments)
		if n > 0 && r.Segments[n-1].ISP == a.via && r.Segments[n-1].Source == a.source {
			s := &r.Segments[n-1]
			s.LastSeq, s.To = a.seq, time.Unix(0, a.sent)
			s.Packets++
			continue
		}
		r.Segments = append(r.Segments, Segment{
			ISP: a.via, Source: a.source, FirstSeq: a.seq, LastSeq: a.seq,
			From: time.Unix(0, a.sent), To: time.Unix(0, a.sent), Packets: 1,
		})
	}
	return r
}

// ISPs returns the ISPs that carried the flow, in order of first use
// (repeats when it moved back).
func (r FlowReport) ISPs() []string {
	var out []string
	for _, s := range r.Segments {
		if len(out) == 0 || out[len(out)-1] != s.ISP {
			out = append(out, s.ISP)
		}
	}
	return out
}

// OnlyOn reports whether every received datagram of the flow went through isp.
func (r FlowReport) OnlyOn(isp string) bool {
	return len(r.Segments) > 0 && slices.Equal(r.ISPs(), []string{isp})
}

// LostBetween counts the datagrams lost in gaps that overlap [from, to].
func (r FlowReport) LostBetween(from, to time.Time) uint64 {
	var n uint64
	for _, g := range r.Gaps {
		if !g.To.Before(from) && !g.From.After(to) {
			n += g.Lost
		}
	}
	return n
}
