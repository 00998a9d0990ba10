// Package backoff is the delay between retries: doubled with every attempt,
// capped. It reads no clock; the caller waits.
package backoff

import "time"

// Backoff is the delay between retries of a failed action: Min, doubled
// with every further attempt, at most Max. It reads no clock; the caller
// waits (a timer, or a fake clock in tests).
type Backoff struct {
	Min time.Duration // first delay; default 500ms
	Max time.Duration // largest delay; default 30s
}

// Delay is the wait before retry number attempt (0 for the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 500 * time.Millisecond
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for range max(attempt, 0) {
		if d >= hi/2 {
			return hi
		}
		d *= 2
	}
	return min(d, hi)
}
