package probe

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"net/netip"

	"gwstated/config"
	"gwstated/linkstate"
)

func profile(t testing.TB, name string) Params {
	t.Helper()
	p, _ := ParamsFor(config.Link{Name: "x", Probe: config.Probe{Profile: name}})
	if err := p.Validate(); err != nil {
		t.Fatalf("profile %s: %v", name, err)
	}
	return p
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// feed gives the target n results, one per interval, from fate(i); it
// returns the transitions as "up"/"down" with their result index.
type transition struct {
	i     int
	state linkstate.State
	why   Reason
}

func feed(tg *Target, p Params, start, n int, fate func(i int) (bool, time.Duration)) []transition {
	var tr []transition
	for i := start; i < start+n; i++ {
		ok, rtt := fate(i)
		if tg.Observe(Result{At: t0.Add(time.Duration(i) * p.Interval), OK: ok, RTT: rtt}) {
			s, _, why := tg.State()
			tr = append(tr, transition{i, s, why})
		}
	}
	return tr
}

func answered(int) (bool, time.Duration) { return true, time.Millisecond }
func lost(int) (bool, time.Duration)     { return false, 0 }

func TestTargetTransitions(t *testing.T) {
	p := profile(t, "default")
	tg := NewTarget(p)
	if s, _, _ := tg.State(); s != linkstate.Unknown {
		t.Fatalf("initial state %v", s)
	}
	// Unknown → up after exactly rise answers.
	tr := feed(tg, p, 0, 10, answered)
	if len(tr) != 1 || tr[0].i != p.Rise-1 || tr[0].state != linkstate.Up || tr[0].why != ReasonRise {
		t.Fatalf("unknown→up: %+v, want up at result %d", tr, p.Rise-1)
	}
	// up → down after exactly fall misses.
	tr = feed(tg, p, 10, 20, lost)
	if len(tr) != 1 || tr[0].i != 10+p.Fall-1 || tr[0].state != linkstate.Down || tr[0].why != ReasonFall {
		t.Fatalf("up→down: %+v, want down at result %d", tr, 10+p.Fall-1)
	}
	if loss, n := tg.ordinaryLoss(); n != 10 || loss != 0 {
		t.Errorf("during a hard outage the loss rules see %d results with %v%% loss, want the 10 answers before it", n, loss)
	}
	if tg.Loss() != 20*100/30.0 {
		t.Errorf("reported loss %v, want outage misses included (20 of 30)", tg.Loss())
	}
	// down → up after exactly rise answers, although the outage was longer than the window.
	tr = feed(tg, p, 30, 10, answered)
	if len(tr) != 1 || tr[0].i != 30+p.Rise-1 || tr[0].state != linkstate.Up {
		t.Fatalf("down→up: %+v, want up at result %d", tr, 30+p.Rise-1)
	}
	// fall-1 misses, then an answer: no transition.
	tr = feed(tg, p, 40, p.Fall-1, lost)
	tr = append(tr, feed(tg, p, 40+p.Fall-1, 1, answered)...)
	if len(tr) != 0 {
		t.Fatalf("fall-1 misses changed state: %+v", tr)
	}
	// Unknown → down after fall misses.
	tg2 := NewTarget(p)
	tr = feed(tg2, p, 0, p.Fall, lost)
	if len(tr) != 1 || tr[0].state != linkstate.Down {
		t.Fatalf("unknown→down: %+v", tr)
	}
	// Fail: down at once.
	if !tg.Fail(t0) {
		t.Fatal("Fail did not change an up target")
	}
	if s, _, why := tg.State(); s != linkstate.Down || why != ReasonFailed {
		t.Fatalf("after Fail: %v %v", s, why)
	}
}

// Loss at or above loss_down takes a target down without fall consecutive
// misses; it stays down until the window's loss is below loss_up.
func TestTargetWindowLoss(t *testing.T) {
	p := profile(t, "default")
	tg := NewTarget(p)
	feed(tg, p, 0, p.Window, answered)
	// Every other result lost from now on: 50% loss, never two misses in a row.
	alt := func(i int) (bool, time.Duration) { return i%2 == 0, time.Millisecond }
	tr := feed(tg, p, p.Window, 200, alt)
	if len(tr) != 1 || tr[0].state != linkstate.Down || tr[0].why != ReasonLoss {
		t.Fatalf("50%% alternating loss: %+v, want one down on loss", tr)
	}
	// Clean again: up only once the window's loss is below loss_up, which
	// takes more than rise answers.
	start := p.Window + 200
	tr = feed(tg, p, start, 2*p.Window, answered)
	if len(tr) != 1 || tr[0].state != linkstate.Up {
		t.Fatalf("recovery: %+v", tr)
	}
	// Loss in the window when coming up must be < loss_up: the window
	// had 50% loss over Window results; k clean results leave
	// (Window-k)/2 misses.
	k := tr[0].i - start + 1
	if got := float64((p.Window-k+1)/2) * 100 / float64(p.Window); got >= p.LossUp {
		t.Errorf("came up after %d clean results with window loss %.0f%% >= loss_up", k, got)
	}
	if k <= p.Rise {
		t.Errorf("came up after %d clean results: loss_up did not hold it", k)
	}
}

func randomLoss(seed uint64, pct float64) func(int) (bool, time.Duration) {
	rng := rand.New(rand.NewPCG(seed, 1))
	return func(int) (bool, time.Duration) { return rng.Float64()*100 >= pct, time.Millisecond }
}

func TestTargetRandomLoss10Percent(t *testing.T) {
	for _, name := range []string{"default", "fast"} {
		p := profile(t, name)
		tg := NewTarget(p)
		tr := feed(tg, p, 0, 10000, randomLoss(42, 10))
		downs := 0
		for _, x := range tr {
			if x.state == linkstate.Down {
				downs++
			}
		}
		if downs != 0 {
			t.Errorf("%s: 10%% loss over 10000 probes: %d down transitions: %+v", name, downs, tr)
		}
	}
}

// At 40% and 60% random loss a target goes down. At 60% it stays down; at
// 40% — right at loss_down — the window's loss dips below loss_up (20%) now
// and then (P(≤7 of 40 lost) ≈ 0.3%), so the target may come back briefly
// a few times an hour; it must still be down nearly all the time.
func TestTargetRandomLossHigh(t *testing.T) {
	for _, name := range []string{"default", "fast"} {
		p := profile(t, name)
		for _, pct := range []float64{40, 60} {
			for seed := uint64(1); seed <= 5; seed++ {
				tg := NewTarget(p)
				const n = 10000
				tr := feed(tg, p, 0, n, randomLoss(seed, pct))
				first := slices.IndexFunc(tr, func(x transition) bool { return x.state == linkstate.Down })
				if first < 0 {
					t.Errorf("%s, %v%% loss, seed %d: never down: %+v", name, pct, seed, tr)
					continue
				}
				up := 0 // probes spent up after the first down
				for k := first + 1; k < len(tr); k += 2 {
					end := n
					if k+1 < len(tr) {
						end = tr[k+1].i
					}
					up += end - tr[k].i
				}
				ups := (len(tr) - first) / 2
				if pct >= 60 && ups > 0 || float64(up) > 0.05*float64(n-tr[first].i) {
					t.Errorf("%s, %v%% loss, seed %d: after going down at probe %d, up %d times for %d probes: %+v",
						name, pct, seed, tr[first].i+1, ups, up, tr)
				}
				t.Logf("%s, %v%% loss, seed %d: down after %d probes (%v, %s); then up %d times, %d of %d probes",
					name, pct, seed, tr[first].i+1, time.Duration(tr[first].i+1)*p.Interval, tr[first].why, ups, up, n-tr[first].i)
			}
		}
	}
}

func TestTargetSlowRTT(t *testing.T) {
	p := profile(t, "default")
	p.RTTDown = 100 * time.Millisecond
	tg := NewTarget(p)
	fast := func(int) (bool, time.Duration) { return true, 10 * time.Millisecond }
	slow := func(int) (bool, time.Duration) { return true, 150 * time.Millisecond }
	feed(tg, p, 0, p.Window, fast)
	tr := feed(tg, p, p.Window, 2*p.Window, slow)
	if len(tr) != 1 || tr[0].state != linkstate.Down || tr[0].why != ReasonRTT {
		t.Fatalf("slow: %+v, want down on rtt", tr)
	}
	// Mean of 10 ms and 150 ms crosses 100 ms after 12 of 40 slow results (≥ 60 ms·k/40 ...): just check the bound.
	if k := tr[0].i - p.Window + 1; k > p.Window {
		t.Errorf("down after %d slow results, more than a window", k)
	}
	tr = feed(tg, p, 3*p.Window, 2*p.Window, fast)
	if len(tr) != 1 || tr[0].state != linkstate.Up {
		t.Fatalf("fast again: %+v, want up", tr)
	}
	// Without rtt_down, RTT never decides.
	p.RTTDown = 0
	tg = NewTarget(p)
	if tr := feed(tg, p, 0, 200, slow); len(tr) != 1 || tr[0].state != linkstate.Up {
		t.Fatalf("rtt_down 0: %+v", tr)
	}
}

// A target that dies for 3 s every 6 s follows it: one down and one up per
// cycle, never more.
func TestTargetFlapping(t *testing.T) {
	p := profile(t, "default")
	tg := NewTarget(p)
	per := int(3 * time.Second / p.Interval)
	cycles := 10
	tr := feed(tg, p, 0, 2*per*cycles, func(i int) (bool, time.Duration) { return (i/per)%2 == 0, time.Millisecond })
	downs, ups := 0, 0
	for _, x := range tr {
		if x.state == linkstate.Down {
			downs++
			if off := x.i % (2 * per); off != per+p.Fall-1 {
				t.Errorf("down at result %d of its cycle, want %d", off, per+p.Fall-1)
			}
		} else {
			ups++
		}
	}
	if downs != cycles || ups != cycles {
		t.Errorf("%d downs, %d ups over %d cycles: %+v", downs, ups, cycles, tr)
	}
}

func TestLinkKOfN(t *testing.T) {
	p := profile(t, "default")
	addrs := netipAddrs{"198.18.1.1", "203.0.113.1", "203.0.113.2"}
	l := NewLink("isp1", 2, addrs.parse(), p)
	at := t0
	step := func(fates ...func(int) (bool, time.Duration)) {
		for i := range 10 {
			at = at.Add(p.Interval)
			for j, tg := range l.Targets {
				ok, rtt := fates[j](i)
				tg.Observe(Result{At: at, OK: ok, RTT: rtt})
			}
		}
		l.Update(at)
	}
	step(answered, answered, answered)
	if s, _ := l.State(); s != linkstate.Up {
		t.Fatalf("all answer: %v", s)
	}
	step(answered, answered, lost)
	if s, _ := l.State(); s != linkstate.Up {
		t.Fatalf("2 of 3 answer, need 2: %v", s)
	}
	// The gateway answers but the upstream targets are dead: down.
	step(answered, lost, lost)
	if s, _ := l.State(); s != linkstate.Down {
		t.Fatalf("only the gateway answers, need 2: %v", s)
	}
	o := l.Observation()
	if o.State != linkstate.Down || len(o.Targets) != 3 || o.Targets[0].State != linkstate.Up || o.Targets[1].State != linkstate.Down {
		t.Fatalf("observation: %+v", o)
	}
	if want := max(o.Targets[1].Loss, o.Targets[2].Loss); o.Loss != want || o.Loss < 50 || o.Targets[0].Loss != 0 {
		t.Errorf("observation loss %v, want %v: the worst of the down targets", o.Loss, want)
	}
	// Unknown while undecided.
	l2 := NewLink("isp2", 2, addrs.parse(), p)
	l2.Targets[0].Observe(Result{At: at, OK: true})
	l2.Update(at)
	if s, _ := l2.State(); s != linkstate.Unknown {
		t.Fatalf("undecided: %v", s)
	}
}

func TestTracker(t *testing.T) {
	k := tracker{timeout: 500 * time.Millisecond, fall: 10, floor: 50 * time.Millisecond}
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	k.sent(1, ms(0))
	k.sent(2, ms(250))
	k.replied(2, ms(251)) // answer to 2 before 1 is resolved: held
	if r := k.release(ms(251), nil); len(r) != 0 {
		t.Fatalf("released %v before request 1 resolved", r)
	}
	if d, _ := k.deadline(); !d.Equal(ms(500)) {
		t.Fatalf("deadline %v", d)
	}
	r := k.release(ms(500), nil)
	if len(r) != 2 || r[0].OK || !r[1].OK || r[1].RTT != time.Millisecond {
		t.Fatalf("release at timeout: %+v, want miss then answer (1ms)", r)
	}
	k.sent(3, ms(500))
	k.replied(3, ms(1100)) // late
	k.replied(99, ms(501)) // unknown
	k.failed(4, ms(750))
	r = k.release(ms(1000), nil)
	if len(r) != 2 || r[0].OK || r[1].OK {
		t.Fatalf("late answer and send failure: %+v, want two misses", r)
	}
	if _, ok := k.deadline(); ok {
		t.Fatal("deadline with nothing outstanding")
	}
	// Recorded as sent, then the send failed: a miss at once.
	k.sent(5, ms(1000))
	k.sendFailed(5)
	if r := k.release(ms(1000), nil); len(r) != 1 || r[0].OK {
		t.Fatalf("failed send: %+v, want a miss", r)
	}
}

// The fall rule: the fall-th request after the last answer, unanswered for
// RTO (srtt + 4·rttvar, at least the floor), releases the run as misses
// before the timeout; a slow answer within the run breaks it.
func TestTrackerFall(t *testing.T) {
	const fall = 3
	iv := 20 * time.Millisecond
	k := tracker{timeout: 100 * time.Millisecond, fall: fall, floor: iv / 2}
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * iv) }
	if k.rto() != k.timeout {
		t.Fatalf("rto before any answer %v, want the timeout", k.rto())
	}
	// Answers with RTT 1ms, then 2ms: srtt ≈ 1–2ms, RTO is the floor.
	for i := range 20 {
		k.sent(uint64(i), at(i))
		k.replied(uint64(i), at(i).Add(time.Millisecond+time.Duration(i%2)*time.Millisecond))
	}
	if r := k.release(at(20), nil); len(r) != 20 {
		t.Fatalf("released %d of 20 answers", len(r))
	}
	if k.rto() != iv/2 {
		t.Fatalf("rto %v (srtt %v, rttvar %v), want the floor %v", k.rto(), k.srtt, k.rttvar, iv/2)
	}
	// A cut: requests 20, 21, 22 unanswered. Down at at(22) + RTO.
	for i := 20; i < 23; i++ {
		k.sent(uint64(i), at(i))
	}
	want := at(22).Add(iv / 2)
	if d, _ := k.deadline(); !d.Equal(want) {
		t.Fatalf("deadline %v, want %v (third request + RTO)", d.Sub(t0), want.Sub(t0))
	}
	if r := k.release(want.Add(-1), nil); len(r) != 0 {
		t.Fatalf("released %+v before the fall", r)
	}
	if r := k.release(want, nil); len(r) != fall || r[0].OK || r[2].OK {
		t.Fatalf("at the fall: %+v, want %d misses", r, fall)
	}
	// While down, the next requests wait for the timeout or for a full fall again.
	k.sent(23, at(23))
	if d, _ := k.deadline(); !d.Equal(at(23).Add(k.timeout)) {
		t.Fatalf("deadline after a fall %v", d.Sub(t0))
	}
	if r := k.release(at(23).Add(iv), nil); len(r) != 0 {
		t.Fatalf("released %+v early after a fall", r)
	}
	k.replied(23, at(23).Add(60*time.Millisecond)) // slow, within the timeout: an answer
	if r := k.release(at(23).Add(60*time.Millisecond), nil); len(r) != 1 || !r[0].OK {
		t.Fatalf("slow answer: %+v", r)
	}

	// A slow answer (60ms, beyond RTO) inside a run: no fall.
	k2 := tracker{timeout: 100 * time.Millisecond, fall: fall, floor: iv / 2}
	k2.sent(0, at(0))
	k2.replied(0, at(0).Add(time.Millisecond))
	k2.release(at(1), nil)
	for i := 1; i <= fall; i++ {
		k2.sent(uint64(i), at(i))
	}
	k2.replied(1, at(1).Add(45*time.Millisecond))
	if r := k2.release(at(fall).Add(iv/2), nil); len(r) != 1 || !r[0].OK {
		t.Fatalf("slow answer in the run: %+v, want it released as an answer and no fall", r)
	}
	if r := k2.release(at(fall).Add(iv/2), nil); len(r) != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestParamsValidate(t *testing.T) {
	good := profile(t, "default")
	for name, mod := range map[string]func(*Params){
		"interval": func(p *Params) { p.Interval = 0 },
		"fall":     func(p *Params) { p.Fall = 0 },
		"window":   func(p *Params) { p.Window = 2 },
		"loss":     func(p *Params) { p.LossUp = 50 },
		"rtt":      func(p *Params) { p.RTTDown = -1 },
	} {
		p := good
		mod(&p)
		if p.Validate() == nil {
			t.Errorf("%s: Validate accepted %+v", name, p)
		}
	}
}

func BenchmarkTargetObserve(b *testing.B) {
	p := profile(b, "default")
	tg := NewTarget(p)
	fate := randomLoss(1, 10)
	for i := 0; b.Loop(); i++ {
		ok, rtt := fate(i)
		tg.Observe(Result{At: t0, OK: ok, RTT: rtt})
	}
}

type netipAddrs []string

func (a netipAddrs) parse() []netip.Addr {
	var out []netip.Addr
	for _, s := range a {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// The window's running sums equal a recount of the window after every
// result, through outages (whose misses leave the loss rules) and
// recoveries.
func TestTargetWindowSums(t *testing.T) {
	p := profile(t, "fast")
	tg := NewTarget(p)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		var ok bool
		switch phase := (i / 500) % 4; phase {
		case 0, 2:
			ok = rng.Float64() >= 0.1 // 10% loss
		case 1:
			ok = (i/50)%2 == 0 // outages of 50 results
		case 3:
			ok = rng.Float64() >= 0.5
		}
		tg.Observe(Result{At: t0.Add(time.Duration(i) * p.Interval), OK: ok, RTT: time.Duration(1+rng.IntN(50)) * time.Millisecond})
		n, lost, ord, ordLost, okN := 0, 0, 0, 0, 0
		var sum time.Duration
		start := (tg.head - tg.n + len(tg.win)) % len(tg.win)
		for k := range tg.n {
			s := tg.win[(start+k)%len(tg.win)]
			n++
			if s.OK {
				okN++
				sum += s.RTT
			} else {
				lost++
			}
			if !s.outage {
				ord++
				if !s.OK {
					ordLost++
				}
			}
		}
		if n != tg.n || lost != tg.lost || ord != tg.ord || ordLost != tg.ordLost || okN != tg.okN || sum != tg.rttSum {
			t.Fatalf("after result %d: sums n %d lost %d ord %d ordLost %d ok %d rtt %v; recount %d %d %d %d %d %v",
				i, tg.n, tg.lost, tg.ord, tg.ordLost, tg.okN, tg.rttSum, n, lost, ord, ordLost, okN, sum)
		}
	}
}
