package agent

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gwstated/config"
	"gwstated/linkstate"
)

// countingRed is a Redundancy that records every Demote call.
type countingRed struct {
	demoted bool
	calls   []bool
}

func (r *countingRed) Demote(_ context.Context, impaired bool) (bool, error) {
	r.calls = append(r.calls, impaired)
	changed := r.demoted != impaired
	r.demoted = impaired
	return changed, nil
}
func (r *countingRed) Demoted() bool                         { return r.demoted }
func (r *countingRed) Roles(context.Context) ([]Role, error) { return nil, nil }

// TestDemoteHold: an impairment that the peers' probes confirm within the
// link's detection time (a link dying for everyone, seen first here) never
// demotes; one that lasts demotes exactly when the hold ends; taking a
// demotion back is immediate.
func TestDemoteHold(t *testing.T) {
	cfg, err := config.Parse([]byte(fmt.Sprintf(emuConfig, 7946, 2379, t.TempDir(), "openbsd")), "fw1")
	if err != nil {
		t.Fatal(err)
	}
	link := cfg.Links[0]
	hold := link.Settle()
	if hold <= 0 {
		t.Fatalf("settle %v", hold)
	}
	red := &countingRed{}
	a := &agent{cfg: cfg, log: slog.New(slog.DiscardHandler), m: newMetrics(prometheus.NewRegistry(), cfg), red: red}
	ctx := context.Background()
	t0 := time.Date(2026, 11, 29, 17, 0, 0, 0, time.UTC)
	impaired := linkstate.Verdict{Seq: 2, Impaired: []linkstate.Impairment{{Node: "fw1", Link: link.Name}}}
	healthy := linkstate.Verdict{Seq: 3}

	// Seen first here, confirmed by the peers 300 ms later: no demotion.
	a.demote(ctx, impaired, t0)
	if red.demoted || !a.demoteDue.Equal(t0.Add(hold)) {
		t.Fatalf("demoted %v at once, due %v (want held until %v)", red.demoted, a.demoteDue, t0.Add(hold))
	}
	a.demote(ctx, healthy, t0.Add(300*time.Millisecond))
	if red.demoted || !a.demoteDue.IsZero() {
		t.Fatalf("after the peers agreed: demoted %v, due %v", red.demoted, a.demoteDue)
	}

	// A one-sided failure: still impaired when the hold ends → demoted then.
	t1 := t0.Add(time.Minute)
	a.demote(ctx, impaired, t1)
	a.demote(ctx, impaired, t1.Add(hold/2)) // a newer verdict, still impaired: the hold keeps its start
	if red.demoted || !a.demoteDue.Equal(t1.Add(hold)) {
		t.Fatalf("mid-hold: demoted %v due %v", red.demoted, a.demoteDue)
	}
	a.demote(ctx, impaired, t1.Add(hold)) // the loop's timer
	if !red.demoted || !a.demoteDue.IsZero() {
		t.Fatalf("at the end of the hold: demoted %v due %v", red.demoted, a.demoteDue)
	}
	// Recovery: undone at once.
	a.demote(ctx, healthy, t1.Add(hold+time.Millisecond))
	if red.demoted {
		t.Fatal("demotion not taken back")
	}
}
