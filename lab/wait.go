package lab

import (
	"context"
	"fmt"
	"time"

	"gwstated/cluster"
	"gwstated/internal/testkit"
	"gwstated/pfapply"
)

// gwctlPollEvery is how often WaitTransition runs gwctl (a process and an
// etcd client each time); files are polled every testkit.PollEvery.
const gwctlPollEvery = 100 * time.Millisecond

// Wait tests cond every 10 ms until it returns true, ctx ends or timeout
// passes; the timeout error names what was awaited and the last error cond
// returned (testkit.Wait).
func Wait(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	return waitEvery(ctx, testkit.PollEvery, timeout, what, cond)
}

// waitEvery is Wait testing cond every interval.
func waitEvery(ctx context.Context, every, timeout time.Duration, what string, cond func() (bool, error)) error {
	return testkit.WaitEvery(ctx, every, timeout, "lab: "+what, cond)
}

// WaitRules waits until both firewalls have applied the ruleset of the
// verdict in which exactly the links in up are up.
func (c *Cluster) WaitRules(ctx context.Context, up []string, timeout time.Duration) error {
	_, err := c.WaitRulesAt(ctx, up, time.Time{}, timeout)
	return err
}

// WaitRulesAt is WaitRules returning, per firewall, when it applied them
// after since (AppliedAt: applied_at of its applied.json).
func (c *Cluster) WaitRulesAt(ctx context.Context, up []string, since time.Time, timeout time.Duration) (map[string]time.Time, error) {
	want, err := c.ExpectedHash(ctx, up)
	if err != nil {
		return nil, err
	}
	at := map[string]time.Time{}
	err = Wait(ctx, timeout, fmt.Sprintf("both firewalls' anchors for up=%v", up), func() (bool, error) {
		for _, fw := range []string{FW1, FW2} {
			if _, ok := at[fw]; ok {
				continue
			}
			a, err := c.Applied(fw)
			if err != nil {
				return false, err
			}
			if a.Hash != want {
				return false, fmt.Errorf("%s has seq %d hash %.12s, want %.12s", fw, a.Seq, a.Hash, want)
			}
			t, err := c.AppliedAt(fw, a.Hash, since)
			if err != nil {
				return false, err
			}
			at[fw] = t
		}
		return true, nil
	})
	return at, err
}

// WaitConverged waits until both firewalls' applied.json carry the same
// seq and hash and returns them.
func (c *Cluster) WaitConverged(ctx context.Context, timeout time.Duration) (pfapply.AppliedFile, error) {
	var got pfapply.AppliedFile
	err := Wait(ctx, timeout, "both firewalls on the same ruleset", func() (bool, error) {
		a, err := c.Applied(FW1)
		if err != nil {
			return false, err
		}
		b, err := c.Applied(FW2)
		if err != nil {
			return false, err
		}
		if a.Hash == "" || a.Seq != b.Seq || a.Hash != b.Hash {
			return false, fmt.Errorf("fw1 seq %d hash %.12s, fw2 seq %d hash %.12s", a.Seq, a.Hash, b.Seq, b.Hash)
		}
		got = a
		return true, nil
	})
	return got, err
}

// WaitTransition waits until `gwctl history` holds a transition of link to
// state to (up, down) with a sequence above after, and returns it.
func (c *Cluster) WaitTransition(ctx context.Context, link, to string, after uint64, timeout time.Duration) (HistoryEntry, error) {
	var got HistoryEntry
	// gwctl runs as a process: poll it less often than files.
	err := waitEvery(ctx, gwctlPollEvery, timeout, fmt.Sprintf("a transition of %s to %s in gwctl history", link, to), func() (bool, error) {
		h, err := c.History(ctx)
		if err != nil {
			return false, err
		}
		for _, e := range h {
			if e.Seq > after && e.Kind == cluster.KindTransition && e.Link == link && e.To.String() == to {
				got = e
				return true, nil
			}
		}
		return false, nil
	})
	return got, err
}

// WaitMetric waits until node's /metrics has series at value want (for
// example `gwstated_etcd_mode{mode="hold"}` at 1) and fails after timeout
// naming the last value read.
func (c *Cluster) WaitMetric(ctx context.Context, node, series string, want float64, timeout time.Duration) error {
	return waitEvery(ctx, gwctlPollEvery, timeout, fmt.Sprintf("%s: %s = %v", node, series, want), func() (bool, error) {
		m, err := c.Metrics(ctx, node)
		if err != nil {
			return false, err
		}
		v, ok := m[series]
		if !ok {
			return false, fmt.Errorf("no series %s", series)
		}
		return v == want, fmt.Errorf("%s = %v", series, v)
	})
}
