package traffic

import (
	"slices"
	"time"
)

// Conn is one TCP connection attempt.
type Conn struct {
	Port     int           `json:"port"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"` // to the greeting, or to the failure
	OK       bool          `json:"ok"`
	Err      string        `json:"err,omitempty"`
	ISP      string        `json:"isp,omitempty"`
	Source   string        `json:"source,omitempty"`
}

// Outage is a run of consecutive failed connection attempts (in start
// order): From is the start of the first failure, To the start of the
// next successful attempt (zero when none followed, Open set).
type Outage struct {
	From   time.Time     `json:"from"`
	To     time.Time     `json:"to"`
	Span   time.Duration `json:"span"`
	Failed int           `json:"failed"`
	Open   bool          `json:"open,omitempty"`
}

// ConnOutages returns the runs of failed attempts among conns, in start
// order. An open outage's Span runs to the start of its last failure.
func ConnOutages(conns []Conn) []Outage {
	cs := slices.Clone(conns)
	slices.SortStableFunc(cs, func(a, b Conn) int { return a.Start.Compare(b.Start) })
	var out []Outage
	var cur *Outage
	var last time.Time
	for _, c := range cs {
		if c.OK {
			if cur != nil {
				cur.To, cur.Span = c.Start, c.Start.Sub(cur.From)
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if cur == nil {
			cur = &Outage{From: c.Start}
		}
		cur.Failed++
		last = c.Start
	}
	if cur != nil {
		cur.Open, cur.Span = true, last.Sub(cur.From)
		out = append(out, *cur)
	}
	return out
}

// Failures summarises the failed attempts among conns: the start of the
// first and of the last, and how many; with balanced connections the
// failures of one dead link interleave with successes on the others, so
// the window, not a run, is the outage of new connections.
type Failures struct {
	First  time.Time     `json:"first"`
	Last   time.Time     `json:"last"`
	Window time.Duration `json:"window"` // Last - First
	Failed int           `json:"failed"`
}

// FailuresOf returns the failures among conns (zero when none failed).
func FailuresOf(conns []Conn) Failures {
	var f Failures
	for _, c := range conns {
		if c.OK {
			continue
		}
		if f.Failed == 0 || c.Start.Before(f.First) {
			f.First = c.Start
		}
		if f.Failed == 0 || c.Start.After(f.Last) {
			f.Last = c.Start
		}
		f.Failed++
	}
	f.Window = f.Last.Sub(f.First)
	return f
}

// CountByISP counts the successful connections per ISP.
func CountByISP(conns []Conn) map[string]int {
	m := map[string]int{}
	for _, c := range conns {
		if c.OK {
			m[c.ISP]++
		}
	}
	return m
}

// Filter returns the connections keep accepts.
func Filter(conns []Conn, keep func(Conn) bool) []Conn {
	var out []Conn
	for _, c := range conns {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// Report is a client run's account.
type Report struct {
	Start time.Time    `json:"start"`
	Stop  time.Time    `json:"stop"` // when sending stopped
	Flows []FlowReport `json:"flows"`
	Conns []Conn       `json:"conns"`
	// Streams are the long-lived TCP connections (stream.go).
	Streams []StreamReport `json:"streams,omitempty"`
}

// Status is a running client's progress (Client.Status), small enough to
// be written several times a second.
type Status struct {
	Time  time.Time          `json:"time"`
	Flows []Progress         `json:"flows"`
	Conns map[string]int     `json:"conns"` // successful connections per ISP
	Fails int                `json:"fails"` // failed connection attempts
	Last  map[string]ConnISP `json:"last"`  // newest attempt per port
	// Streams: the long-lived TCP connections' progress (stream.go).
	Streams []StreamProgress `json:"streams,omitempty"`
}

// ConnISP is the outcome of a port's newest connection attempt.
type ConnISP struct {
	Start time.Time `json:"start"`
	OK    bool      `json:"ok"`
	ISP   string    `json:"isp,omitempty"`
}
