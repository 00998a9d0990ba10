package traffic

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestStreamAccounting(t *testing.T) {
	s := NewStream(3, 10*ms)
	s.Connected("isp1", "198.18.1.10:4000", 5555, t0)
	for i := range 5 {
		s.Sent()
		s.Received(uint64(i), t0.Add(time.Duration(i+1)*10*ms))
	}
	// a 300 ms stall, then the held-back records arrive together
	for i := 5; i < 35; i++ {
		s.Sent()
	}
	for i := 5; i < 35; i++ {
		s.Received(uint64(i), t0.Add(350*ms))
	}
	r := s.Report(t0.Add(360 * ms))
	if !r.Alive() || r.Received != 35 || r.Sent != 35 || r.OutOfOrder != 0 || r.ISP != "isp1" || r.LocalPort != 5555 {
		t.Fatalf("report %+v", r)
	}
	if r.LongestGap != 300*ms || len(r.Gaps) != 1 || r.Gaps[0].Open {
		t.Fatalf("gaps %+v longest %v: want one closed 300ms gap", r.Gaps, r.LongestGap)
	}
	if d, open := r.StallAround(t0.Add(100*ms), t0.Add(110*ms)); d != 300*ms || open {
		t.Errorf("stall around the gap: %v %v", d, open)
	}
	if d, _ := r.StallAround(t0.Add(400*ms), t0.Add(500*ms)); d != 0 {
		t.Errorf("stall after the gap: %v", d)
	}
	// the stream stops receiving: an open gap to the end of the run
	s.Sent()
	r = s.Report(t0.Add(2 * time.Second))
	if r.Alive() || !r.Gaps[1].Open || r.LongestGap != 2*time.Second-10*ms-350*ms {
		t.Fatalf("stalled to the end: %+v", r)
	}
	// an error ends it at the error
	s.Failed(errors.New("connection reset by peer"), t0.Add(time.Second))
	s.Failed(errors.New("second error ignored"), t0.Add(1500*ms))
	r = s.Report(t0.Add(2 * time.Second))
	if r.Alive() || r.Err != "connection reset by peer" || !r.Gaps[1].To.Equal(t0.Add(time.Second)) {
		t.Fatalf("reset: %+v", r)
	}
	// out of order records: a broken stream
	b := NewStream(1, 10*ms)
	b.Connected("isp2", "x:1", 1, t0)
	b.Received(1, t0.Add(ms))
	if r := b.Report(t0.Add(5 * ms)); r.Alive() || r.OutOfOrder != 1 {
		t.Fatalf("out of order: %+v", r)
	}
	if r := NewStream(2, ms).Report(t0); r.Alive() {
		t.Fatalf("never connected but alive: %+v", r)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	b := AppendRecord(nil, 1<<40, -7)
	if len(b) != recordLen {
		t.Fatalf("%d bytes", len(b))
	}
	if seq, sent := ParseRecord(b); seq != 1<<40 || sent != -7 {
		t.Fatalf("%d %d", seq, sent)
	}
}

// TestStreamsLoopback runs streams against ServeStreams on loopback: each
// is greeted with the server's identity, its records come back in order,
// none stalls, and the client's stop is not an error.
func TestStreamsLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopServer := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- (&Server{ISP: "isp4"}).ServeStreams(sctx, ln) }()
	c, err := NewClient(Config{
		Server: netip.MustParseAddr("127.0.0.1"), Streams: 5, StreamRate: 200,
		StreamPort: ln.Addr().(*net.TCPAddr).Port, Drain: 100 * ms,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res := make(chan Report, 1)
	go func() {
		r, err := c.Run(ctx)
		if err != nil {
			t.Error(err)
		}
		res <- r
	}()
	tick := time.NewTicker(10 * ms)
	defer tick.Stop()
	for enough := false; !enough; {
		select {
		case <-ctx.Done():
			t.Fatalf("no progress: %+v", c.Status())
		case <-tick.C:
		}
		st := c.Status()
		enough = len(st.Streams) == 5
		for _, s := range st.Streams {
			enough = enough && s.Received >= 50 && s.ISP == "isp4"
		}
	}
	cancel()
	r := <-res
	stopServer()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if len(r.Streams) != 5 {
		t.Fatalf("%d streams", len(r.Streams))
	}
	for _, s := range r.Streams {
		if !s.Alive() || s.Received < 50 || !strings.HasPrefix(s.Source, "127.0.0.1:") || s.OutOfOrder > 0 {
			t.Errorf("stream %d: %+v", s.Stream, s)
		}
		if s.Sent != uint64(s.Received) {
			t.Errorf("stream %d: sent %d, %d echoed", s.Stream, s.Sent, s.Received)
		}
	}
}

func TestStreamConfigErrors(t *testing.T) {
	_, err := NewClient(Config{Server: netip.MustParseAddr("127.0.0.1"), Streams: 2000, StreamRate: -1})
	if !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
	for _, w := range []string{"streams: 2000", "stream rate", "stream port: 0"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
}
