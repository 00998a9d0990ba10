package traffic

import (
	"encoding/binary"
	"time"
)

// Streams are long-lived TCP connections that carry data continuously:
// what a firewall pair's state sync must keep alive across a master
// change. The client writes a record (sequence number, send time) every
// interval; the server greets the connection like any other (identity,
// the source it saw) and then echoes every byte back. A stream's stall is
// measured on the arrival times of the echoed records: TCP retransmits
// what a stall held back, so nothing is lost, but nothing arrives either.

// recordLen is the size of one stream record: seq, send time.
const recordLen = 16

// AppendRecord appends one stream record.
func AppendRecord(b []byte, seq uint64, sent int64) []byte {
	b = binary.BigEndian.AppendUint64(b, seq)
	return binary.BigEndian.AppendUint64(b, uint64(sent))
}

// ParseRecord decodes one stream record (b holds at least recordLen bytes).
func ParseRecord(b []byte) (seq uint64, sent int64) {
	return binary.BigEndian.Uint64(b), int64(binary.BigEndian.Uint64(b[8:]))
}

// Stream accounts one TCP stream. It is pure: the caller passes every time
// in. Not safe for concurrent use; Client serialises access.
type Stream struct {
	id        int
	interval  time.Duration
	isp, src  string
	port      int
	start     int64 // connected (greeting read)
	sent      uint64
	recv      int
	next      uint64 // next expected seq
	bad       int    // records out of order (TCP: a broken stream)
	last      int64  // arrival of the newest record (start before the first)
	longest   time.Duration
	gaps      []StallGap
	err       string
	errAt     int64
	connected bool
}

// StallGap is an interval without any echoed record on a stream: From is
// the arrival of the last record before it (or the connection), To the
// arrival of the first after it; Open when none came after it (to the end
// of the run, or to the stream's error).
type StallGap struct {
	From     time.Time     `json:"from"`
	To       time.Time     `json:"to"`
	Duration time.Duration `json:"duration"`
	Open     bool          `json:"open,omitempty"`
}

// NewStream returns the accounting of stream id, which writes one record
// every interval.
func NewStream(id int, interval time.Duration) *Stream {
	return &Stream{id: id, interval: interval}
}

// Connected records that the stream's greeting (isp, source) arrived at t
// on local port port.
func (s *Stream) Connected(isp, source string, port int, t time.Time) {
	s.isp, s.src, s.port, s.connected = isp, source, port, true
	s.start, s.last = t.UnixNano(), t.UnixNano()
}

// Sent records that the next record is written and returns its sequence
// number.
func (s *Stream) Sent() uint64 {
	s.sent++
	return s.sent - 1
}

// gapAbove is how long a silence must be to be listed in Gaps: three
// intervals (the records of a healthy stream arrive one interval apart).
func (s *Stream) gapAbove() time.Duration { return 3 * s.interval }

// Received records the echo of record seq arriving at t.
func (s *Stream) Received(seq uint64, t time.Time) {
	now := t.UnixNano()
	if seq != s.next {
		s.bad++
	}
	s.next = seq + 1
	s.recv++
	if d := time.Duration(now - s.last); d > s.longest {
		s.longest = d
	}
	if d := time.Duration(now - s.last); d > s.gapAbove() {
		s.gaps = append(s.gaps, StallGap{From: time.Unix(0, s.last), To: t, Duration: d})
	}
	s.last = now
}

// Failed records the stream's first error (a reset, an end of file, a
// failed connect) at t.
func (s *Stream) Failed(err error, t time.Time) {
	if s.err == "" {
		s.err, s.errAt = err.Error(), t.UnixNano()
	}
}

// StreamProgress is a stream's state while it runs.
type StreamProgress struct {
	Stream   int       `json:"stream"`
	Received int       `json:"received"`
	Last     time.Time `json:"last"` // arrival of the newest record
	ISP      string    `json:"isp,omitempty"`
	Err      string    `json:"err,omitempty"`
}

// Progress returns the stream's state now.
func (s *Stream) Progress() StreamProgress {
	p := StreamProgress{Stream: s.id, Received: s.recv, ISP: s.isp, Err: s.err}
	if s.recv > 0 {
		p.Last = time.Unix(0, s.last)
	}
	return p
}

// StreamReport is the account of one stream.
type StreamReport struct {
	Stream    int           `json:"stream"`
	LocalPort int           `json:"local_port,omitempty"`
	ISP       string        `json:"isp,omitempty"`
	Source    string        `json:"source,omitempty"` // the NAT address the server saw
	Interval  time.Duration `json:"interval"`
	Start     time.Time     `json:"start"`
	Sent      uint64        `json:"sent"`
	Received  int           `json:"received"`
	// OutOfOrder counts records that did not arrive in sequence: TCP
	// delivers in order, so anything but 0 is a broken stream.
	OutOfOrder int `json:"out_of_order,omitempty"`
	// LongestGap is the longest time without an echoed record, counting
	// an open gap to the end of the run.
	LongestGap time.Duration `json:"longest_gap"`
	Gaps       []StallGap    `json:"gaps,omitempty"`
	Err        string        `json:"err,omitempty"`
	ErrAt      time.Time     `json:"err_at,omitzero"`
}

// Report returns the stream's account at stop, when the client stopped
// sending. A silence still running then (or ended by an error) is an open
// gap: from the last arrival to the error, else to stop less one interval
// (the record in flight).
func (s *Stream) Report(stop time.Time) StreamReport {
	r := StreamReport{
		Stream: s.id, LocalPort: s.port, ISP: s.isp, Source: s.src, Interval: s.interval,
		Sent: s.sent, Received: s.recv, OutOfOrder: s.bad, LongestGap: s.longest,
		Gaps: append([]StallGap(nil), s.gaps...), Err: s.err,
	}
	if s.connected {
		r.Start = time.Unix(0, s.start)
	}
	if s.err != "" {
		r.ErrAt = time.Unix(0, s.errAt)
	}
	if !s.connected {
		return r
	}
	end := stop.UnixNano() - int64(s.interval)
	if s.err != "" && s.errAt < end {
		end = s.errAt
	}
	if d := time.Duration(end - s.last); d > s.gapAbove() {
		r.Gaps = append(r.Gaps, StallGap{From: time.Unix(0, s.last), To: time.Unix(0, end), Duration: d, Open: true})
		r.LongestGap = max(r.LongestGap, d)
	}
	return r
}

// Alive reports whether the stream ran to the end: connected, no error,
// in order, and no open gap.
func (r StreamReport) Alive() bool {
	if r.Start.IsZero() || r.Err != "" || r.OutOfOrder > 0 {
		return false
	}
	for _, g := range r.Gaps {
		if g.Open {
			return false
		}
	}
	return true
}

// StallAround returns the longest silence of the stream that overlaps
// [from, to] (0 when the stream never stalled there beyond three
// intervals), and whether that silence is open (the stream did not
// resume).
func (r StreamReport) StallAround(from, to time.Time) (time.Duration, bool) {
	var d time.Duration
	open := false
	for _, g := range r.Gaps {
		if g.To.Before(from) || g.From.After(to) {
			continue
		}
		if g.Duration > d {
			d, open = g.Duration, g.Open
		}
	}
	return d, open
}
