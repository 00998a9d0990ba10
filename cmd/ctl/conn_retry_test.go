package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// A read refused by a leaderless member is tried again (the next attempt
// goes to the next endpoint); any other error, or an answer, ends it, and
// so does the request's deadline. The lab test TestStatusWithLeaderlessMember
// runs it against a real split.
func TestRetryNoLeader(t *testing.T) {
	calls := 0
	v, err := retryNoLeader(t.Context(), func(context.Context) (int, error) {
		calls++
		if calls < 3 {
			return 0, rpctypes.ErrNoLeader
		}
		return 7, nil
	})
	if v != 7 || err != nil || calls != 3 {
		t.Errorf("got %d, %v after %d calls; want 7, nil after 3", v, err, calls)
	}

	other := errors.New("etcdserver: request is too large")
	calls = 0
	if _, err := retryNoLeader(t.Context(), func(context.Context) (int, error) { calls++; return 0, other }); !errors.Is(err, other) || calls != 1 {
		t.Errorf("other error: %v after %d calls; want it after 1", err, calls)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = retryNoLeader(ctx, func(context.Context) (int, error) { return 0, rpctypes.ErrNoLeader })
	if !errors.Is(err, rpctypes.ErrNoLeader) {
		t.Errorf("at the deadline: %v, want the last refusal (no leader)", err)
	}
}
