package probe

import "time"

// tracker turns a target's sends, replies and send errors into Results in
// send order. A request is a miss once Timeout has passed since it was sent
// without an answer; an answer that comes later is ignored. A result is
// released only when every earlier request is resolved, so an answer to
// request k+1 waits for request k's timeout: "consecutive" in the state
// machine means consecutive requests. Pure: the time is passed in.
type tracker struct {
	timeout time.Duration
	out     []pending // unreleased requests, in send order
}

type pending struct {
	seq  uint64
	sent time.Time
	done bool
	ok   bool
	rtt  time.Duration
}

func (k *tracker) sent(seq uint64, at time.Time) {
	k.out = append(k.out, pending{seq: seq, sent: at})
}

// replied records an answer; a late, duplicate or unknown one is ignored.
func (k *tracker) replied(seq uint64, rtt time.Duration) {
	for i := range k.out {
		if p := &k.out[i]; p.seq == seq && !p.done {
			if rtt <= k.timeout {
				p.done, p.ok, p.rtt = true, true, rtt
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

// release returns the results that are final at now, in send order.
func (k *tracker) release(now time.Time, into []Result) []Result {
	i := 0
	for ; i < len(k.out); i++ {
		p := k.out[i]
		if !p.done && now.Sub(p.sent) < k.timeout {
			break
		}
		into = append(into, Result{At: now, OK: p.done && p.ok, RTT: p.rtt})
	}
	k.out = append(k.out[:0], k.out[i:]...)
	return into
}

// deadline is when the oldest unanswered request times out.
func (k *tracker) deadline() (time.Time, bool) {
	if len(k.out) == 0 {
		return time.Time{}, false
	}
	return k.out[0].sent.Add(k.timeout), true
}
