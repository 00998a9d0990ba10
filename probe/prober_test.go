package probe

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"gwstated/config"
	"gwstated/linkstate"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

type emitted struct {
	at time.Time
	o  linkstate.Observation
}

// recorder collects emitted Observations; it checks that emit is never
// called concurrently.
type recorder struct {
	mu   sync.Mutex
	busy bool
	all  []emitted
	t    *testing.T
}

func (r *recorder) emit(o linkstate.Observation) {
	r.mu.Lock()
	if r.busy {
		r.t.Error("emit called concurrently")
	}
	r.busy = true
	r.all = append(r.all, emitted{time.Now(), o})
	r.busy = false
	r.mu.Unlock()
}

// changes returns the state changes of one link (the first Unknown included).
func (r *recorder) changes(link string) []emitted {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []emitted
	last := linkstate.State(255)
	for _, e := range r.all {
		if e.o.Link == link && e.o.State != last {
			out = append(out, e)
			last = e.o.State
		}
	}
	return out
}

func link(name string, profile string, targets ...string) config.Link {
	l := config.Link{Name: name, Interface: "wan0", Probe: config.Probe{Profile: profile}}
	for _, t := range targets {
		l.Probe.Targets = append(l.Probe.Targets, netip.MustParseAddr(t))
	}
	l.Gateway = l.Probe.Targets[0]
	return l
}

// runFor runs a prober in the bubble for d of fake time.
func runFor(t *testing.T, p *Prober, rec *recorder, d time.Duration) error {
	ctx, cancel := context.WithCancel(t.Context())
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		err = p.Run(ctx, rec.emit)
	}()
	time.Sleep(d)
	cancel()
	<-done
	return err
}

// Exact detection time of a hard loss. Requests go out at s_k =
// start + offset + k·interval, rounded up to the scheduler's send grid; with j
// the first request lost (the first sent at or after the cut), the
// fall-th request after the last answer, j+fall-1, has gone unanswered
// for RTO (the floor, interval/2: the fake RTT is a steady 2 ms) at
// s_(j+fall-1) + RTO: the target — and the link — goes down then (on the
// grid), between (fall-1)·interval + RTO and fall·interval + RTO (+ grid)
// after the cut.
//
// With a transport that is a Poller (the ICMP one on Linux) the instants
// are the same: replies are read at the scheduler's wake-ups, each with
// its arrival time, and before any deadline is looked at. Only the
// emission of "up" waits for the wake-up one step of the send grid after
// the rise-th request; its Since is still the answer's arrival.
func TestDetectionTime(t *testing.T) {
	for _, polled := range []bool{false, true} {
		for _, name := range []string{"default", "fast", "bfd"} {
			if polled {
				name += "/polled"
			}
			t.Run(name, func(t *testing.T) { testDetectionTime(t, strings.TrimSuffix(name, "/polled"), polled) })
		}
	}
}

func testDetectionTime(t *testing.T, name string, polled bool) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		net := newFakeNet()
		var tr Transport = net
		if polled {
			pn := newPolledNet()
			net, tr = pn.fakeNet, pn
		}
		gw := netip.MustParseAddr("198.18.1.1")
		cut := start.Add(5*time.Second + 37*time.Millisecond)
		net.set(gw, func(_ uint64, sent time.Time) (bool, time.Duration) {
			return !sent.Before(cut), 2 * time.Millisecond
		})
		cfg := testConfig(link("isp1", name, gw.String()))
		p, err := New(cfg, discard, WithTransport(tr))
		if err != nil {
			t.Fatal(err)
		}
		params, _ := ParamsFor(cfg.Links[0])
		rec := &recorder{t: t}
		if err := runFor(t, p, rec, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		ch := rec.changes("isp1")
		if len(ch) != 3 || ch[0].o.State != linkstate.Unknown || ch[1].o.State != linkstate.Up || ch[2].o.State != linkstate.Down {
			t.Fatalf("changes %+v, want unknown, up, down", ch)
		}
		offset := p.Specs()[0].Offset
		send := func(k int) time.Time { return p.onSendGrid(start.Add(offset + time.Duration(k)*params.Interval)) }
		if got := net.sent(gw); len(got) < 10 || !got[0].Equal(send(0)) || !got[9].Equal(send(9)) {
			t.Fatalf("requests at %v..., want %v, %v, ...", got[:min(3, len(got))], send(0), send(1))
		}
		j := 0
		for send(j).Before(cut) {
			j++
		}
		rto := params.Interval / 2
		want := p.onGrid(send(j + params.Fall - 1).Add(rto))
		if !ch[2].at.Equal(want) || !ch[2].o.Since.Equal(want) {
			t.Errorf("down emitted at %v (since %v), want %v", ch[2].at.Sub(start), ch[2].o.Since.Sub(start), want.Sub(start))
		}
		lat := ch[2].at.Sub(cut)
		lo := time.Duration(params.Fall-1)*params.Interval + rto
		hi := time.Duration(params.Fall)*params.Interval + rto + p.grid
		if lat < lo || lat > hi {
			t.Errorf("detection %v outside [%v, %v]", lat, lo, hi)
		}
		// From the last answer (request j-1's, 2ms after it was sent).
		if last := ch[2].at.Sub(send(j - 1).Add(2 * time.Millisecond)); last > time.Duration(params.Fall)*params.Interval+rto+p.grid {
			t.Errorf("detection %v after the last answer", last)
		}
		// Up after exactly rise answers: request rise-1 answered after 2ms.
		wantUp := send(params.Rise - 1).Add(2 * time.Millisecond)
		switch {
		case !ch[1].o.Since.Equal(wantUp):
			t.Errorf("up since %v, want %v", ch[1].o.Since.Sub(start), wantUp.Sub(start))
		case !polled && !ch[1].at.Equal(wantUp):
			t.Errorf("up at %v, want %v", ch[1].at.Sub(start), wantUp.Sub(start))
		case polled && !ch[1].at.Equal(p.onSendGrid(wantUp)):
			t.Errorf("up emitted at %v, want at the send grid's next step, %v", ch[1].at.Sub(start), p.onSendGrid(wantUp).Sub(start))
		}
		t.Logf("%s: cut at +%v, down %v later (bounds %v..%v)", name, cut.Sub(start), lat, lo, hi)
	})
}

// With a Poller transport a reply is read at the scheduler's next
// wake-up, which may be the very deadline that would take the target
// down: the reply that arrived just before it must count, and one that
// arrived just after must not. bfd, one target answering in 2 ms; from
// request 100 on, 15 requests are lost and the 16th — the one whose RTO
// (7.5 ms) completes the fall — is answered 0.1 ms before or after it.
// The one wake-up between that request and its deadline (a step of the
// send grid after it, 3.75 ms) comes before either reply.
func TestPolledReplyAtDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		rtt  time.Duration
		down bool
	}{
		{"before", 7400 * time.Microsecond, false},
		{"after", 7600 * time.Microsecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pn := newPolledNet()
				gw := netip.MustParseAddr("198.18.1.1")
				cfg := testConfig(link("isp1", "bfd", gw.String()))
				params, _ := ParamsFor(cfg.Links[0])
				last := uint64(100 + params.Fall - 1)
				pn.set(gw, func(seq uint64, _ time.Time) (bool, time.Duration) {
					switch {
					case seq >= 100 && seq < last:
						return true, 0
					case seq == last:
						return false, tc.rtt
					}
					return false, 2 * time.Millisecond
				})
				p, err := New(cfg, discard, WithTransport(pn))
				if err != nil {
					t.Fatal(err)
				}
				rec := &recorder{t: t}
				if err := runFor(t, p, rec, 3*time.Second); err != nil {
					t.Fatal(err)
				}
				if n := len(pn.sent(gw)); n < int(last)+50 {
					t.Fatalf("only %d requests sent", n)
				}
				ch := rec.changes("isp1")
				wentDown := slices.ContainsFunc(ch, func(e emitted) bool { return e.o.State == linkstate.Down })
				if wentDown != tc.down {
					t.Errorf("reply %v after the fall-completing request: down %v, want %v (%d changes)", tc.rtt, wentDown, tc.down, len(ch))
				}
			})
		})
	}
}

// The gateway answers, the upstream targets are dead: with need 2 the link
// is down; with need 1 it is up. A second link is unaffected.
func TestProberKOfN(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		up := func(uint64, time.Time) (bool, time.Duration) { return false, time.Millisecond }
		dead := func(uint64, time.Time) (bool, time.Duration) { return true, 0 }
		net.set(netip.MustParseAddr("198.18.1.1"), up)
		net.set(netip.MustParseAddr("203.0.113.1"), dead)
		net.set(netip.MustParseAddr("203.0.113.2"), dead)
		net.set(netip.MustParseAddr("198.18.2.1"), up)
		l1 := link("isp1", "fast", "198.18.1.1", "203.0.113.1", "203.0.113.2")
		l1.Probe.Need = 2
		l2 := link("isp2", "fast", "198.18.2.1", "203.0.113.1")
		l2.Probe.Need = 1
		cfg := testConfig(l1, l2)
		p, err := New(cfg, discard, WithTransport(net), WithHeartbeat(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{t: t}
		if err := runFor(t, p, rec, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		c1, c2 := rec.changes("isp1"), rec.changes("isp2")
		if len(c1) != 2 || c1[1].o.State != linkstate.Down {
			t.Errorf("isp1 (gateway up, upstreams dead, need 2): %+v, want unknown then down", c1)
		}
		if len(c2) != 2 || c2[1].o.State != linkstate.Up {
			t.Errorf("isp2 (gateway up, need 1): %+v, want unknown then up", c2)
		}
		snap := p.Snapshot()
		if s := snap["isp1"]; s.State != linkstate.Down || len(s.Targets) != 3 || s.Targets[0].State != linkstate.Up {
			t.Errorf("snapshot isp1: %+v", s)
		}
		// Heartbeats: about one per 500ms per link, each with a larger Seq.
		rec.mu.Lock()
		defer rec.mu.Unlock()
		n := 0
		for i, e := range rec.all {
			if i > 0 && e.o.Seq != rec.all[i-1].o.Seq+1 {
				t.Errorf("seq %d after %d", e.o.Seq, rec.all[i-1].o.Seq)
			}
			if e.o.Link == "isp2" {
				n++
			}
		}
		if n < 10 || n > 12 {
			t.Errorf("%d observations of isp2 in 5s with a 500ms heartbeat", n)
		}
	})
}

// Links spread over the interval: 16 links never send within
// interval/(2·16) of each other in the first round; a link's targets share
// its phase (one wake-up sends them, one reads their replies).
func TestSpread(t *testing.T) {
	var links []config.Link
	for i := range 16 {
		links = append(links, link("l"+string(rune('a'+i)), "fast",
			netip.AddrFrom4([4]byte{198, 18, byte(i), 1}).String(), "203.0.113.1", "203.0.113.2", "203.0.113.3"))
	}
	p, err := New(testConfig(links...), discard, WithTransport(newFakeNet()))
	if err != nil {
		t.Fatal(err)
	}
	specs := p.Specs()
	interval := specs[0].Interval
	for i, s := range specs {
		if s.Offset < 0 || s.Offset >= interval {
			t.Errorf("spec %d offset %v outside [0, %v)", i, s.Offset, interval)
		}
		switch {
		case i%4 != 0 && s.Offset != specs[i-1].Offset:
			t.Errorf("targets of link %s at %v and %v", s.Link, specs[i-1].Offset, s.Offset)
		case i > 0 && i%4 == 0 && s.Offset-specs[i-1].Offset < interval/time.Duration(2*len(links)):
			t.Errorf("links %s and %s %v apart", specs[i-1].Link, s.Link, s.Offset-specs[i-1].Offset)
		}
	}
	q, _ := New(testConfig(links...), discard, WithTransport(newFakeNet()))
	for i, s := range q.Specs() {
		if s.Offset != specs[i].Offset {
			t.Fatalf("offsets are not deterministic: %v vs %v", s.Offset, specs[i].Offset)
		}
	}
}

type failing struct{ err error }

func (f failing) Open(Source, func(Reply)) (Endpoint, error) { return nil, f.err }

func TestNoPrivilegeStopsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(link("isp1", "default", "198.18.1.1"))
		p, err := New(cfg, discard, WithTransport(failing{err: ErrNoPrivilege}))
		if err != nil {
			t.Fatal(err)
		}
		err = p.Run(t.Context(), func(linkstate.Observation) {})
		if !errors.Is(err, ErrNoPrivilege) {
			t.Fatalf("Run: %v, want ErrNoPrivilege", err)
		}
		if err := p.Run(t.Context(), func(linkstate.Observation) {}); err == nil {
			t.Error("second Run accepted")
		}
	})
}

// flaky fails its first Open and works afterwards.
type flaky struct {
	fakeNet *fakeNet
	mu      sync.Mutex
	calls   int
}

func (f *flaky) Open(s Source, recv func(Reply)) (Endpoint, error) {
	f.mu.Lock()
	f.calls++
	first := f.calls == 1
	f.mu.Unlock()
	if first {
		return nil, errors.New("bind: cannot assign requested address")
	}
	return f.fakeNet.Open(s, recv)
}

func TestTransportFailureIsDownThenRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(link("isp1", "default", "198.18.1.1"))
		p, err := New(cfg, discard, WithTransport(&flaky{fakeNet: newFakeNet()}), WithRetry(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{t: t}
		start := time.Now()
		if err := runFor(t, p, rec, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		ch := rec.changes("isp1")
		if len(ch) != 3 || ch[1].o.State != linkstate.Down || !ch[1].at.Equal(start) || ch[2].o.State != linkstate.Up || ch[2].at.Sub(start) < 2*time.Second {
			t.Fatalf("changes %+v: want down at once, up after the 2s retry", ch)
		}
	})
}

func TestNewRejects(t *testing.T) {
	for name, l := range map[string]config.Link{
		"need": func() config.Link { l := link("isp1", "default", "198.18.1.1"); l.Probe.Need = 2; return l }(),
		"rise": func() config.Link { l := link("isp1", "default", "198.18.1.1"); l.Probe.Window = 2; return l }(),
	} {
		if _, err := New(testConfig(l), discard, WithTransport(newFakeNet())); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New: %v, want ErrConfig", name, err)
		}
	}
}

// sendFailing's first endpoint cannot send (its address went away);
// endpoints opened later can.
type sendFailing struct {
	fakeNet *fakeNet
	mu      sync.Mutex
	opens   int
}

func (f *sendFailing) Open(s Source, recv func(Reply)) (Endpoint, error) {
	f.mu.Lock()
	f.opens++
	first := f.opens == 1
	f.mu.Unlock()
	ep, err := f.fakeNet.Open(s, recv)
	if first {
		return brokenEndpoint{ep}, err
	}
	return ep, err
}

type brokenEndpoint struct{ Endpoint }

func (brokenEndpoint) Send(netip.Addr, uint16, uint64) error {
	return errors.New("sendto: invalid argument")
}

// Sends that keep failing are misses (the target goes down on fall) and,
// after reopenAfter of them, the socket is opened again, its source
// resolved anew.
func TestSendFailuresReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(link("isp1", "fast", "198.18.1.1"))
		tr := &sendFailing{fakeNet: newFakeNet()}
		p, err := New(cfg, discard, WithTransport(tr))
		if err != nil {
			t.Fatal(err)
		}
		params, _ := ParamsFor(cfg.Links[0])
		rec := &recorder{t: t}
		if err := runFor(t, p, rec, time.Duration(reopenAfter+20)*params.Interval); err != nil {
			t.Fatal(err)
		}
		ch := rec.changes("isp1")
		if len(ch) != 3 || ch[1].o.State != linkstate.Down || ch[2].o.State != linkstate.Up {
			t.Fatalf("changes %+v: want unknown, down (sends fail), up (socket opened again)", ch)
		}
		if ch[1].o.Targets[0].Reason != string(ReasonFall) {
			t.Errorf("down for %q, want fall", ch[1].o.Targets[0].Reason)
		}
		if tr.opens != 2 {
			t.Errorf("%d opens, want 2", tr.opens)
		}
	})
}

// WithTargetChanges reports every change of a target's state, as it is
// logged: the flaky socket takes the target down at once, and it comes up
// after the retry.
func TestTargetChangesReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(link("isp1", "default", "198.18.1.1"))
		var got []TargetChange // appended with the prober's state locked
		var mu sync.Mutex
		p, err := New(cfg, discard, WithTransport(&flaky{fakeNet: newFakeNet()}), WithRetry(2*time.Second),
			WithTargetChanges(func(c TargetChange) { mu.Lock(); got = append(got, c); mu.Unlock() }))
		if err != nil {
			t.Fatal(err)
		}
		if err := runFor(t, p, &recorder{t: t}, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		tg := netip.MustParseAddr("198.18.1.1")
		want := []TargetChange{{"isp1", tg, linkstate.Down}, {"isp1", tg, linkstate.Up}}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("target changes %+v, want %+v", got, want)
		}
	})
}
