package probe

import (
	"net/netip"
	"sync"
	"time"
)

// behaviour decides the fate of one request: lost, or answered after rtt.
type behaviour func(seq uint64, sent time.Time) (lost bool, rtt time.Duration)

// fakeNet is a Transport for synctest bubbles: every request's reply is
// delivered after the behaviour's RTT by a time.AfterFunc, which runs on
// the bubble's fake clock.
type fakeNet struct {
	mu     sync.Mutex
	behave map[netip.Addr]behaviour
	sends  map[netip.Addr][]time.Time
	opens  []Source
	// polled: replies wait in queue (with their arrival time, as the
	// kernel's receive time) until Poll; see polledNet.
	polled bool
	queue  []queued
	polls  int
}

type queued struct {
	ep *fakeEndpoint
	r  Reply
}

// polledNet is a fakeNet that is a Poller, as the ICMP transport on
// Linux: nothing reads a reply until the prober polls.
type polledNet struct{ *fakeNet }

func newPolledNet() polledNet {
	f := newFakeNet()
	f.polled = true
	return polledNet{f}
}

// Poll hands over the replies that arrived before now.
func (f polledNet) Poll(now time.Time) {
	f.mu.Lock()
	f.polls++
	var due []queued
	rest := f.queue[:0]
	for _, q := range f.queue {
		if q.r.At.After(now) {
			rest = append(rest, q)
		} else {
			due = append(due, q)
		}
	}
	f.queue = rest
	f.mu.Unlock()
	for _, q := range due {
		q.ep.mu.Lock()
		closed := q.ep.closed
		q.ep.mu.Unlock()
		if !closed {
			q.ep.recv(q.r)
		}
	}
}

func newFakeNet() *fakeNet {
	return &fakeNet{behave: map[netip.Addr]behaviour{}, sends: map[netip.Addr][]time.Time{}}
}

func (f *fakeNet) set(t netip.Addr, b behaviour) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.behave[t] = b
}

func (f *fakeNet) sent(t netip.Addr) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.sends[t]...)
}

func (f *fakeNet) Open(src Source, recv func(Reply)) (Endpoint, error) {
	f.mu.Lock()
	f.opens = append(f.opens, src)
	f.mu.Unlock()
	return &fakeEndpoint{net: f, recv: recv, timers: map[*time.Timer]bool{}}, nil
}

type fakeEndpoint struct {
	net    *fakeNet
	recv   func(Reply)
	mu     sync.Mutex
	closed bool
	timers map[*time.Timer]bool
	wg     sync.WaitGroup
}

func (e *fakeEndpoint) Send(dst netip.Addr, id uint16, seq uint64) error {
	now := time.Now()
	f := e.net
	f.mu.Lock()
	b := f.behave[dst]
	f.sends[dst] = append(f.sends[dst], now)
	f.mu.Unlock()
	lost, rtt := false, time.Duration(0)
	if b != nil {
		lost, rtt = b(seq, now)
	}
	if lost {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.wg.Add(1)
	var tm *time.Timer
	tm = time.AfterFunc(rtt, func() {
		defer e.wg.Done()
		e.mu.Lock()
		delete(e.timers, tm)
		e.mu.Unlock()
		r := Reply{From: dst, ID: id, Seq: seq, At: time.Now()}
		if f.polled {
			f.mu.Lock()
			f.queue = append(f.queue, queued{e, r})
			f.mu.Unlock()
			return
		}
		e.recv(r)
	})
	e.timers[tm] = true
	return nil
}

func (e *fakeEndpoint) Close() error {
	e.mu.Lock()
	e.closed = true
	for tm := range e.timers {
		if tm.Stop() {
			e.wg.Done()
		}
	}
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}
