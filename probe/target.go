package probe

import (
	"fmt"
	"time"

	"gwstated/linkstate"
)

// Params are one target's probing parameters, resolved from config.Probe
// and its profile.
type Params struct {
	Interval time.Duration // between echo requests
	Timeout  time.Duration // a request not answered within Timeout is a miss
	Fall     int           // consecutive misses -> down
	Rise     int           // consecutive answers (and window loss < LossUp) -> up
	Window   int           // results kept for the loss and RTT rules
	LossDown float64       // percent; window loss at or above -> down
	LossUp   float64       // percent; window loss must be below to come up
	RTTDown  time.Duration // mean window RTT above -> down; 0 disables
}

// Validate reports parameters the state machine cannot work with.
func (p Params) Validate() error {
	switch {
	case p.Interval <= 0 || p.Timeout <= 0:
		return fmt.Errorf("interval %v and timeout %v must be positive", p.Interval, p.Timeout)
	case p.Fall < 1 || p.Rise < 1:
		return fmt.Errorf("fall %d and rise %d must be at least 1", p.Fall, p.Rise)
	case p.Window < p.Rise || p.Window < p.Fall:
		return fmt.Errorf("window %d must hold at least fall (%d) and rise (%d) results", p.Window, p.Fall, p.Rise)
	case p.LossDown <= 0 || p.LossDown > 100 || p.LossUp < 0 || p.LossUp > p.LossDown:
		return fmt.Errorf("want 0 <= loss_up (%v%%) <= loss_down (%v%%) <= 100%%, loss_down > 0", p.LossUp, p.LossDown)
	case p.RTTDown < 0:
		return fmt.Errorf("rtt_down %v must not be negative", p.RTTDown)
	}
	return nil
}

// Result is the outcome of one echo request, in send order.
type Result struct {
	At  time.Time     // when the outcome became known (reply, or send + timeout)
	OK  bool          // answered within the timeout
	RTT time.Duration // when OK
}

// Reason says why a target changed state.
type Reason string

const (
	ReasonFall   Reason = "fall"   // Fall consecutive misses
	ReasonLoss   Reason = "loss"   // window loss at or above LossDown
	ReasonRTT    Reason = "rtt"    // window mean RTT above RTTDown
	ReasonRise   Reason = "rise"   // Rise consecutive answers, window loss below LossUp
	ReasonFailed Reason = "failed" // the target cannot be probed (socket error)
)

// Target is the pure state machine of one probe target: it sees results in
// send order, with the time passed in, and never reads a clock.
//
// Rules, applied after every result:
//
//   - Fall consecutive misses: down (reason fall).
//   - A full window of Window ordinary results (see below) with loss >=
//     LossDown, or (RTTDown > 0) a mean RTT of its answered results above
//     RTTDown: down (reason loss / rtt). The window rules wait for a full
//     window because a short one is noisy: at 10% random loss, 8 of 20
//     lost happens once in ~3000 results, 16 of 40 about once in a million.
//   - Rise consecutive answers, and loss below LossUp over the window's
//     ordinary results: up (reason rise).
//
// How the window is counted across an outage: the run of misses that takes
// a target down on fall — from its first miss until the next answer — is an
// outage. Its misses stay in the window (Loss reports them) but the loss
// rules do not count them, neither as results nor as misses. So after a
// hard outage of any length, Rise answers bring the target back (the
// window's other results are those from before the outage), and the target
// is not taken down again on loss by its own outage. Only the run that
// took the target down is an outage: runs of misses while it is already
// down count as loss, so a lossy link that went down (at 40% or 60% random
// loss) is judged on all its misses and stays down until its loss really
// fell below LossUp.
//
// The initial state is Unknown; the first rule that fires decides it.
type Target struct {
	p      Params
	state  linkstate.State
	since  time.Time
	reason Reason
	ok     int // consecutive answers
	miss   int // consecutive misses
	win    []slot
	head   int // next slot in win once full
	n      int // results in win
	lastOK time.Time
	outage bool // in the run of misses that took the target down

	// Running sums over the window, so that a result costs O(1) whatever
	// the window's size.
	ord, ordLost int           // ordinary (not outage) results, and those lost
	lost         int           // misses, outage misses included
	okN          int           // answers
	rttSum       time.Duration // of the answers
}

type slot struct {
	Result
	outage bool // a miss of the run that took the target down
}

// NewTarget returns a target in state Unknown.
func NewTarget(p Params) *Target {
	return &Target{p: p, win: make([]slot, p.Window)}
}

// State returns the target's state, when it last changed and why.
func (t *Target) State() (linkstate.State, time.Time, Reason) { return t.state, t.since, t.reason }

// Misses is the current run of unanswered requests (0 after an answer).
func (t *Target) Misses() int { return t.miss }

// Results is how many results the window holds (at most Params.Window).
func (t *Target) Results() int { return t.n }

// LastOK is the time of the last answered request (zero: none yet).
func (t *Target) LastOK() time.Time { return t.lastOK }

// Observe feeds one result and reports whether the state changed.
func (t *Target) Observe(r Result) bool {
	if r.OK {
		t.ok++
		t.miss = 0
		t.lastOK = r.At
		t.outage = false
	} else {
		t.miss++
		t.ok = 0
	}
	t.push(r)
	if t.outage {
		t.setOutage((t.head - 1 + len(t.win)) % len(t.win))
	}
	if t.miss >= t.p.Fall && t.state != linkstate.Down {
		t.outage = true
		t.markOutage()
		return t.set(linkstate.Down, r.At, ReasonFall)
	}
	loss, n := t.ordinaryLoss()
	if t.state != linkstate.Down && n == t.p.Window {
		if loss >= t.p.LossDown {
			return t.set(linkstate.Down, r.At, ReasonLoss)
		}
		if t.slow() {
			return t.set(linkstate.Down, r.At, ReasonRTT)
		}
	}
	if t.state != linkstate.Up && t.ok >= t.p.Rise && loss < t.p.LossUp && !t.slow() {
		return t.set(linkstate.Up, r.At, ReasonRise)
	}
	return false
}

// Fail marks the target down at once: it cannot be probed at all.
func (t *Target) Fail(at time.Time) bool {
	t.ok, t.miss = 0, 0
	return t.set(linkstate.Down, at, ReasonFailed)
}

func (t *Target) set(s linkstate.State, at time.Time, why Reason) bool {
	if t.state == s {
		return false
	}
	t.state, t.since, t.reason = s, at, why
	return true
}

func (t *Target) push(r Result) {
	if t.n == len(t.win) { // the oldest result leaves the window
		o := t.win[t.head]
		if !o.outage {
			t.ord--
			if !o.OK {
				t.ordLost--
			}
		}
		if o.OK {
			t.okN--
			t.rttSum -= o.RTT
		} else {
			t.lost--
		}
	}
	t.win[t.head] = slot{Result: r}
	t.ord++
	if r.OK {
		t.okN++
		t.rttSum += r.RTT
	} else {
		t.ordLost++
		t.lost++
	}
	t.head = (t.head + 1) % len(t.win)
	if t.n < len(t.win) {
		t.n++
	}
}

// setOutage marks the miss in win[i] as an outage miss.
func (t *Target) setOutage(i int) {
	if s := &t.win[i]; !s.outage && !s.OK {
		s.outage = true
		t.ord--
		t.ordLost--
	}
}

// markOutage marks the current run of misses (the newest t.miss results,
// at most a window) as outage misses.
func (t *Target) markOutage() {
	for i := 1; i <= min(t.miss, t.n); i++ {
		t.setOutage((t.head - i + len(t.win)) % len(t.win))
	}
}

// ordinaryLoss is the loss in percent over the window's results that are
// not outage misses, and how many there are.
func (t *Target) ordinaryLoss() (float64, int) {
	if t.ord == 0 {
		return 0, 0
	}
	return float64(t.ordLost) * 100 / float64(t.ord), t.ord
}

// Loss is the window's loss in percent, outage misses included (0 with an
// empty window).
func (t *Target) Loss() float64 {
	if t.n == 0 {
		return 0
	}
	return float64(t.lost) * 100 / float64(t.n)
}

// RTT is the mean RTT of the window's answered results; ok is false when
// there are none.
func (t *Target) RTT() (time.Duration, bool) {
	if t.okN == 0 {
		return 0, false
	}
	return t.rttSum / time.Duration(t.okN), true
}

// slow reports a full window whose mean RTT is above RTTDown.
func (t *Target) slow() bool {
	if t.p.RTTDown <= 0 || t.n != t.p.Window {
		return false // no need to average the window
	}
	rtt, ok := t.RTT()
	return ok && rtt > t.p.RTTDown
}
