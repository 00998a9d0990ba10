package probe

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"gwstated/linkstate"
)

// simResult is what a simulation saw.
type simResult struct {
	requests int
	downs    int // up → down transitions of the target
	fall     int // of which on fall
	runs     int // runs of fall misses in a row, whatever the state
}

// simulate runs one target's tracker and state machine — the code the
// Prober runs — for d of fake time: a request every p.Interval, each lost
// with probability loss (0..1), else answered after an RTT of 1 ms plus
// an exponential jitter of mean 1 ms. Pure: no clock, no goroutines; the
// events (requests, replies, the tracker's deadlines) are taken in time
// order, as the scheduler does.
func simulate(p Params, seed uint64, loss float64, d time.Duration) simResult {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	start := t0
	trk := newTracker(p)
	tg := NewTarget(p)
	var (
		res     simResult
		replies []simReply // by arrival time
		results []Result
		next    = start
		end     = start.Add(d)
		miss    int
	)
	observe := func(now time.Time) {
		results = trk.release(now, results[:0])
		for _, r := range results {
			if r.OK {
				miss = 0
			} else if miss++; miss == p.Fall {
				res.runs++
			}
			before, _, _ := tg.State()
			if tg.Observe(r) {
				if s, _, why := tg.State(); s == linkstate.Down && before == linkstate.Up {
					res.downs++
					if why == ReasonFall {
						res.fall++
					}
				}
			}
		}
	}
	for seq := uint64(0); ; {
		now := next
		if len(replies) > 0 && replies[0].at.Before(now) {
			now = replies[0].at
		}
		if dl, ok := trk.deadline(); ok && dl.Before(now) {
			now = dl
		}
		if now.After(end) {
			break
		}
		switch {
		case len(replies) > 0 && replies[0].at.Equal(now):
			r := replies[0]
			replies = replies[1:]
			trk.replied(r.seq, r.at)
		case now.Equal(next):
			trk.sent(seq, now)
			res.requests++
			if rng.Float64() >= loss {
				rtt := time.Millisecond + time.Duration(rng.ExpFloat64()*float64(time.Millisecond))
				r := simReply{seq: seq, at: now.Add(rtt)}
				i := len(replies)
				for i > 0 && replies[i-1].at.After(r.at) {
					i--
				}
				replies = slices.Insert(replies, i, r)
			}
			seq++
			next = next.Add(p.Interval)
		}
		observe(now)
	}
	return res
}

type simReply struct {
	seq uint64
	at  time.Time
}

// fallRate is the expected number of falls (runs of at least fall misses)
// per request at random loss q: a run starts at a given request when the
// one before was answered and this one and the fall-1 after it are lost.
func fallRate(q float64, fall int) float64 { return (1 - q) * math.Pow(q, float64(fall)) }

// TestSimulationBFD24h: the bfd profile, one target, 24 hours of fake time
// (5.76 million requests) at 10% and at 20% random loss: no false down.
// Expected: ≈5e-10 and ≈3e-5 falls (fallRate × requests); the 500-result
// window's loss rule (40%) is 20σ and 11σ away.
func TestSimulationBFD24h(t *testing.T) {
	if testing.Short() {
		t.Skip("24 h of simulated probing takes a few seconds")
	}
	p := profile(t, "bfd")
	for _, loss := range []float64{0.10, 0.20} {
		t.Run(fmt.Sprintf("loss=%.0f%%", loss*100), func(t *testing.T) {
			t.Parallel()
			simulate24h(t, p, loss)
		})
	}
}

func simulate24h(t *testing.T, p Params, loss float64) {
	{
		r := simulate(p, 20261129, loss, 24*time.Hour)
		exp := fallRate(loss, p.Fall) * float64(r.requests)
		t.Logf("bfd, %.0f%% loss, 24 h: %d requests, %d downs (%d on fall); expected falls %.2g", loss*100, r.requests, r.downs, r.fall, exp)
		if r.requests != int(24*time.Hour/p.Interval)+1 {
			t.Errorf("%d requests in 24 h at %v", r.requests, p.Interval)
		}
		if r.downs != 0 {
			t.Errorf("bfd at %.0f%% loss: %d false downs in 24 h", loss*100, r.downs)
		}
	}
}

// TestSimulationFallRate checks the analytic false-down rate that
// docs/probing.md tabulates against the simulation where falls are
// frequent enough to count: runs of fall misses in a row as the tracker
// releases them (whatever the target's state), at loss levels giving
// about 150 of them. The simulated count must be within 5σ
// (Poisson) of fallRate × requests.
func TestSimulationFallRate(t *testing.T) {
	if testing.Short() {
		t.Skip("simulated probing takes a few seconds")
	}
	for _, c := range []struct {
		profile string
		loss    float64
		d       time.Duration
	}{
		{"bfd", 0.65, 1 * time.Hour},
		{"fast", 0.40, 16 * time.Hour},
		{"default", 0.40, 12 * time.Hour},
	} {
		p := profile(t, c.profile)
		r := simulate(p, 7, c.loss, c.d)
		exp := fallRate(c.loss, p.Fall) * float64(r.requests)
		t.Logf("%s at %.0f%% loss, %v: %d runs of %d misses, expected %.1f", c.profile, c.loss*100, c.d, r.runs, p.Fall, exp)
		if math.Abs(float64(r.runs)-exp) > 5*math.Sqrt(exp) || exp < 50 {
			t.Errorf("%s at %.0f%% loss: %d runs of %d misses in %d requests, analytic %.1f", c.profile, c.loss*100, r.runs, p.Fall, r.requests, exp)
		}
	}
}

// TestFalseDownTable prints the table of docs/probing.md (go test -run
// FalseDownTable -v ./probe/): expected false downs per target per day on
// fall, by profile and random loss.
func TestFalseDownTable(t *testing.T) {
	var b strings.Builder
	losses := []float64{0.01, 0.05, 0.10, 0.20, 0.30}
	fmt.Fprintf(&b, "| profile | interval × fall | detection after the last answer |")
	for _, q := range losses {
		fmt.Fprintf(&b, " %.0f%% loss |", q*100)
	}
	b.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(losses)) + "\n")
	for _, name := range []string{"default", "fast", "bfd"} {
		p := profile(t, name)
		perDay := float64(24*time.Hour) / float64(p.Interval)
		fmt.Fprintf(&b, "| %s | %v × %d | ≤ %v |", name, p.Interval, p.Fall, time.Duration(p.Fall)*p.Interval+p.Interval/2)
		for _, q := range losses {
			fmt.Fprintf(&b, " %.1e |", fallRate(q, p.Fall)*perDay)
		}
		b.WriteString("\n")
	}
	t.Logf("expected false downs per target per day (fall rule, random loss):\n%s", b.String())
}
