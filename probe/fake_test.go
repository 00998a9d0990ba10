package probe

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// behaviour decides the fate of one request: lost, or answered after rtt.
type behaviour func(seq uint64, sent time.Time) (lost bool, rtt time.Duration)

// fakeNet is a Transport for synctest bubbles: requests on a time.Ticker,
// replies after the behaviour's RTT.
type fakeNet struct {
	mu     sync.Mutex
	behave map[netip.Addr]behaviour
	sends  map[netip.Addr][]time.Time
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

func (f *fakeNet) Ping(ctx context.Context, spec Spec, h Handler) error {
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(spec.Offset):
	}
	tick := time.NewTicker(spec.Interval)
	defer tick.Stop()
	type reply struct {
		seq uint64
		at  time.Time
		rtt time.Duration
	}
	var queue []reply // in arrival order: RTTs here never reorder replies much; sorted on insert
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	var seq uint64
	send := func() {
		now := time.Now()
		f.mu.Lock()
		b := f.behave[spec.Target]
		f.sends[spec.Target] = append(f.sends[spec.Target], now)
		f.mu.Unlock()
		h.Sent(seq, now)
		lost, rtt := false, time.Duration(0)
		if b != nil {
			lost, rtt = b(seq, now)
		}
		if !lost {
			r := reply{seq: seq, at: now.Add(rtt), rtt: rtt}
			i := len(queue)
			for i > 0 && queue[i-1].at.After(r.at) {
				i--
			}
			queue = append(queue[:i], append([]reply{r}, queue[i:]...)...)
		}
		seq++
	}
	deliver := func() {
		now := time.Now()
		for len(queue) > 0 && !queue[0].at.After(now) {
			h.Replied(queue[0].seq, queue[0].rtt, now)
			queue = queue[1:]
		}
		if len(queue) > 0 {
			wake.Reset(queue[0].at.Sub(now))
		}
	}
	send()
	deliver()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			send()
			deliver()
		case <-wake.C:
			deliver()
		}
	}
}
