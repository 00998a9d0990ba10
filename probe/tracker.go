package probe

import "time"

// tracker turns a target's sends, replies and send errors into Results in
// send order. Pure: the time is passed in.
//
// Two clocks decide a request's fate:
//
//   - Timeout: a request answered within Timeout of its send is an answer,
//     one unanswered after Timeout is a miss; a later answer is ignored.
//     This is what the window (loss, RTT) rules see.
//   - The fall rule looks at the time since the last answer instead: once
//     the Fall-th request sent after the last answered one has gone
//     unanswered for RTO, those Fall requests are released as misses at
//     once (the target goes down on fall), without waiting for Timeout.
//     RTO is TCP's retransmission timeout (RFC 6298): srtt + 4·rttvar of
//     the answers so far, at least the floor (Interval/2) and at most
//     Timeout (Timeout before the first answer). So a cut is detected
//     (Fall-1)·Interval + RTO to Fall·Interval + RTO after it happened,
//     and Fall·Interval + RTO - RTT after the last answer arrived,
//     whatever the path's RTT. An answer that is merely slow still
//     arrives before the Fall-th request's RTO has passed — the rule
//     tolerates a delay of (Fall-1)·Interval + RTO — so only a run of
//     Fall lost requests takes a target down: the fall count, not the
//     timeout, is what guards against loss.
//
// Results are released only when every earlier request is resolved, so an
// answer to request k+1 waits for request k's fate: "consecutive" in the
// state machine means consecutive requests.
type tracker struct {
	timeout time.Duration
	fall    int
	floor   time.Duration // least RTO

	srtt, rttvar time.Duration
	sampled      bool

	run int       // misses released since the last released answer
	out []pending // unreleased requests, in send order
}

type pending struct {
	seq  uint64
	sent time.Time
	done bool // answered in time, or the send failed
	ok   bool
	rtt  time.Duration
}

func newTracker(p Params) tracker {
	return tracker{timeout: p.Timeout, fall: p.Fall, floor: p.Interval / 2}
}

// rto is the time after which an unanswered request counts towards a fall.
func (k *tracker) rto() time.Duration {
	if !k.sampled {
		return k.timeout
	}
	return min(max(k.srtt+4*k.rttvar, k.floor), k.timeout)
}

// sample updates srtt and rttvar as RFC 6298, section 2.
func (k *tracker) sample(r time.Duration) {
	if !k.sampled {
		k.srtt, k.rttvar, k.sampled = r, r/2, true
		return
	}
	d := k.srtt - r
	if d < 0 {
		d = -d
	}
	k.rttvar = (3*k.rttvar + d) / 4
	k.srtt = (7*k.srtt + r) / 8
}

func (k *tracker) sent(seq uint64, at time.Time) {
	k.out = append(k.out, pending{seq: seq, sent: at})
}

// replied records an answer that arrived at; a late, duplicate or unknown
// one is ignored.
func (k *tracker) replied(seq uint64, at time.Time) {
	for i := range k.out {
		if p := &k.out[i]; p.seq == seq && !p.done {
			if rtt := at.Sub(p.sent); rtt <= k.timeout {
				p.done, p.ok, p.rtt = true, true, max(rtt, 0)
				k.sample(p.rtt)
			}
			return
		}
	}
}

// failed records a request that could not be sent (it replaces sent): a
// miss as soon as the requests before it are resolved.
func (k *tracker) failed(seq uint64, at time.Time) {
	k.out = append(k.out, pending{seq: seq, sent: at, done: true})
}

// sendFailed turns a request recorded as sent into one that could not be
// sent.
func (k *tracker) sendFailed(seq uint64) {
	for i := range k.out {
		if p := &k.out[i]; p.seq == seq && !p.done {
			p.done = true
			return
		}
	}
}

// need is how many unanswered requests complete a fall: Fall less the
// misses already released, or a whole Fall again once one has happened.
func (k *tracker) need() int {
	if n := k.fall - k.run; n >= 1 {
		return n
	}
	return max(k.fall, 1)
}

// fallAt is when the n requests from out[i] become a run of misses, if
// none of them is answered; ok is false when fewer than n are out or one
// of them is answered.
func (k *tracker) fallAt(i, n int) (time.Time, bool) {
	if i+n > len(k.out) {
		return time.Time{}, false
	}
	var at time.Time
	rto := k.rto()
	for _, p := range k.out[i : i+n] {
		if p.ok {
			return time.Time{}, false
		}
		t := p.sent
		if !p.done {
			t = t.Add(rto)
		}
		if t.After(at) {
			at = t
		}
	}
	return at, true
}

// release returns the results that are final at now, in send order.
func (k *tracker) release(now time.Time, into []Result) []Result {
	i := 0
	for i < len(k.out) {
		p := k.out[i]
		if p.done || now.Sub(p.sent) >= k.timeout {
			into = append(into, Result{At: now, OK: p.ok, RTT: p.rtt})
			if p.ok {
				k.run = 0
			} else {
				k.run++
			}
			i++
			continue
		}
		n := k.need()
		if at, ok := k.fallAt(i, n); ok && !now.Before(at) {
			for range n {
				into = append(into, Result{At: now})
			}
			k.run += n
			i += n
			continue
		}
		break
	}
	k.out = append(k.out[:0], k.out[i:]...)
	return into
}

// deadline is when release next has something to release without a new
// answer: the oldest request's timeout, or a fall, whichever is first.
func (k *tracker) deadline() (time.Time, bool) {
	if len(k.out) == 0 {
		return time.Time{}, false
	}
	if k.out[0].done {
		return k.out[0].sent, true
	}
	d := k.out[0].sent.Add(k.timeout)
	if at, ok := k.fallAt(0, k.need()); ok && at.Before(d) {
		d = at
	}
	return d, true
}
