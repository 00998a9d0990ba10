package agent

import (
	"maps"
	"testing"
	"time"

	"gwstated/linkstate"
)

// TestPhasesOf: the phases of one apply from the times it was given; a
// verdict decided before the agent started has no commit phase, a retry
// (no delivery time) neither commit nor queue, a backend that measures no
// table or conntrack step has neither.
func TestPhasesOf(t *testing.T) {
	t0 := time.Unix(1000, 0)
	started := t0.Add(-time.Hour)
	decided := t0
	delivered := t0.Add(30 * time.Millisecond)
	start := delivered.Add(5 * time.Millisecond)
	nft := DataplaneResult{TableIn: 4 * time.Millisecond, StatesKilled: 9 * time.Millisecond}
	for _, c := range []struct {
		name      string
		started   time.Time
		delivered time.Time
		res       DataplaneResult
		want      map[string]time.Duration
	}{
		{"nft", started, delivered, nft, map[string]time.Duration{
			phaseCommit: 30 * time.Millisecond, phaseQueue: 5 * time.Millisecond,
			phaseTable: 4 * time.Millisecond, phaseConntrack: 9 * time.Millisecond, phaseEnd: 12 * time.Millisecond}},
		{"decided before the start", decided.Add(time.Second), delivered, nft, map[string]time.Duration{
			phaseQueue: 5 * time.Millisecond, phaseTable: 4 * time.Millisecond, phaseConntrack: 9 * time.Millisecond, phaseEnd: 12 * time.Millisecond}},
		{"retry", started, time.Time{}, nft, map[string]time.Duration{
			phaseTable: 4 * time.Millisecond, phaseConntrack: 9 * time.Millisecond, phaseEnd: 12 * time.Millisecond}},
		{"pf", started, delivered, DataplaneResult{}, map[string]time.Duration{
			phaseCommit: 30 * time.Millisecond, phaseQueue: 5 * time.Millisecond, phaseEnd: 12 * time.Millisecond}},
	} {
		got := phasesOf(linkstate.Verdict{Time: decided}, c.started, c.delivered, start, 12*time.Millisecond, c.res)
		if !maps.Equal(got, c.want) {
			t.Errorf("%s: phases %v, want %v", c.name, got, c.want)
		}
	}
}
