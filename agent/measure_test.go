package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/linkstate"
)

// fakeNode delivers the verdicts a test sends; the cluster itself is
// tested in cluster/ — here only the agent's own path is measured.
type fakeNode struct {
	verdicts chan cluster.VerdictRecord
}

func (f *fakeNode) Run(ctx context.Context) error {
	<-ctx.Done()
	close(f.verdicts)
	return nil
}
func (f *fakeNode) Verdicts() <-chan cluster.VerdictRecord                     { return f.verdicts }
func (f *fakeNode) Publish(linkstate.Observation)                              {}
func (f *fakeNode) SetCARP([]cluster.CARPStatus)                               {}
func (f *fakeNode) ReportApplied(context.Context, cluster.AppliedRecord) error { return nil }
func (f *fakeNode) Status() cluster.Status                                     { return cluster.Status{} }

// BenchmarkApplyLatency: verdict seen → anchors written by the dir
// backend (fsync), for 2 and 8 links; one iteration is one verdict that
// flips isp1. Reports p50 and p99.
func BenchmarkApplyLatency(b *testing.B) {
	for _, n := range []int{2, 8} {
		b.Run(fmt.Sprintf("links%d", n), func(b *testing.B) {
			lat := measureApply(b, n, b.N)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// measureApply runs an agent on the dir backend and returns the sorted
// verdict → applied latencies of rounds verdicts.
func measureApply(t testing.TB, links, rounds int) []time.Duration {
	dir := t.TempDir()
	yaml := fmt.Sprintf("cluster: {name: m, gossip: {insecure: true}, etcd: {endpoints: [http://127.0.0.1:1]}}\n"+
		"lan: {interface: dc0, network: 192.168.0.0/24}\npf: {backend: dir, dir: %s}\nmetrics: {listen: \"\"}\nnodes: {fw1: {}}\nlinks:\n",
		filepath.Join(dir, "anchors"))
	var names []string
	for i := 1; i <= links; i++ {
		yaml += fmt.Sprintf("  - {name: isp%d, interface: em%d, gateway: 198.51.100.%d}\n", i, i, i)
		names = append(names, fmt.Sprintf("isp%d", i))
	}
	node := &fakeNode{verdicts: make(chan cluster.VerdictRecord)}
	applied := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			StateDir:   filepath.Join(dir, "state"),
			LoadConfig: func() (*config.Config, error) { return config.Parse([]byte(yaml), "fw1") },
			NewProber:  func(*config.Config, *slog.Logger) (Prober, error) { return newScripted(), nil },
			NewNode:    func(*config.Config, *slog.Logger) (Node, error) { return node, nil },
			Applied: func(rec cluster.AppliedRecord) {
				if rec.Error == "" {
					applied <- time.Now()
				}
			},
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var lat []time.Duration
	for i := 0; i < rounds; i++ {
		v := linkstate.Verdict{Seq: uint64(i + 1), Links: map[string]linkstate.LinkVerdict{}}
		for j, l := range names {
			st := linkstate.Up
			if j == 0 && i%2 == 1 {
				st = linkstate.Down
			}
			v.Links[l] = linkstate.LinkVerdict{State: st}
			if st == linkstate.Up {
				v.Active = append(v.Active, l)
			}
		}
		start := time.Now()
		select {
		case node.verdicts <- cluster.VerdictRecord{Verdict: v}:
		case err := <-done:
			done <- err // for the deferred wait
			t.Fatalf("agent stopped: %v", err)
		}
		end := <-applied
		lat = append(lat, end.Sub(start))
	}
	slices.Sort(lat)
	return lat
}
