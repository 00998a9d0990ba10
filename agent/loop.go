package agent

import (
	"context"
	"errors"
	"fmt"
	"gwstated/cluster"
	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/probe"
	"log/slog"
	"time"
)

// start builds and runs a cluster node and prober for cfg.
func (a *agent) start(ctx context.Context, cfg *config.Config) (*generation, error) {
	g := &generation{errc: make(chan error, 2)}
	newNode := a.o.NewNode
	if newNode == nil {
		newNode = func(cfg *config.Config, log *slog.Logger) (Node, error) {
			var opts []cluster.Option
			if cfg.IsWitness() {
				opts = append(opts, cluster.WithWitness())
			}
			if a.o.Version != "" {
				opts = append(opts, cluster.WithVersion(a.o.Version))
			}
			return cluster.New(cfg, a.o.Log, opts...)
		}
	}
	node, err := newNode(cfg, a.log)
	if err != nil {
		return g, err
	}
	var prober Prober
	if !cfg.IsWitness() {
		newProber := a.o.NewProber
		if newProber == nil {
			newProber = func(cfg *config.Config, log *slog.Logger) (Prober, error) {
				return probe.New(cfg, log, probe.WithTargetChanges(a.m.targetChange))
			}
		}
		if prober, err = newProber(cfg, a.log); err != nil {
			return g, err
		}
	}
	gctx, cancel := context.WithCancel(ctx)
	g.node, g.cancel = node, cancel
	g.wg.Go(func() {
		err := node.Run(gctx)
		if gctx.Err() == nil {
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			g.errc <- fmt.Errorf("cluster: %w", err)
		}
	})
	if prober != nil {
		g.wg.Go(func() {
			err := prober.Run(gctx, func(o linkstate.Observation) {
				a.m.observation(o)
				a.log.Debug("observation", "link", o.Link, "state", o.State, "loss", o.Loss, "rtt", o.RTT)
				node.Publish(o)
			})
			if err != nil && gctx.Err() == nil {
				g.errc <- fmt.Errorf("probe: %w", err)
			}
		})
	}
	if a.lastRec != nil {
		a.report(ctx, node, *a.lastRec)
	}
	return g, nil
}

func (g *generation) stop() {
	if g.cancel != nil {
		g.cancel()
	}
	g.wg.Wait()
}

// loop is the agent's one event loop: verdicts, retries, drift checks,
// CARP reads, reloads.
func (a *agent) loop(ctx context.Context) error {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	drift := newTicker(a.cfg.PF.DriftInterval)
	defer drift.Stop()
	slow := time.NewTicker(2 * time.Second) // CARP state and status metrics
	defer slow.Stop()
	demote := time.NewTimer(time.Hour) // a demotion held back (see demote)
	demote.Stop()
	defer demote.Stop()
	var demoteArmed time.Time
	for {
		g := a.gen
		verdicts := g.node.Verdicts()
		select {
		case <-ctx.Done():
			a.log.Info("shutting down: resigning, leaving gossip, leaving pf as it is")
			return nil
		case err := <-g.errc:
			return err
		case err := <-a.embErr:
			if err != nil {
				return fmt.Errorf("embedded etcd member: %w", err)
			}
			a.embErr = nil
		case rec, ok := <-verdicts:
			if !ok {
				select {
				case err := <-g.errc:
					return err
				case <-ctx.Done():
					return nil
				}
			}
			if a.dp == nil { // witness
				continue
			}
			if rec, ok = a.acceptVerdict(rec); !ok {
				continue
			}
			if a.have && rec.Seq < a.cur.Seq && rec.Leader == a.cur.Leader {
				a.log.Debug("ignoring an older verdict", "seq", rec.Seq)
				continue
			}
			a.cur, a.have, a.attempt = rec, true, 0
			retry.Stop()
			a.apply(ctx, g.node)
		case <-retry.C:
			a.apply(ctx, g.node)
		case <-demote.C:
			demoteArmed = time.Time{}
			if a.dp != nil && a.attempt == 0 {
				a.demote(ctx, a.applied, time.Now())
			}
		case <-drift.C:
			a.repair(ctx)
		case <-slow.C:
			st := g.node.Status()
			a.m.status(st)
			a.readCARP(ctx, g.node)
			a.retryDemote(ctx)
			a.retryState(ctx, g.node)
		case <-a.o.Reload:
			if a.reload(ctx) {
				drift.Stop()
				drift = newTicker(a.cfg.PF.DriftInterval)
			}
		}
		if a.demoteDue != demoteArmed {
			demote.Stop()
			if demoteArmed = a.demoteDue; !demoteArmed.IsZero() {
				demote.Reset(time.Until(demoteArmed))
			}
		}
		if a.retryDue {
			// schedule the retry of the apply that just failed
			a.retryDue = false
			retry.Reset(a.o.Backoff.Delay(a.attempt - 1))
		}
	}
}

// ticker whose zero interval never fires.
type ticker struct {
	*time.Ticker
	C <-chan time.Time
}

func newTicker(d time.Duration) ticker {
	if d <= 0 {
		return ticker{C: nil}
	}
	t := time.NewTicker(d)
	return ticker{Ticker: t, C: t.C}
}

func (t ticker) Stop() {
	if t.Ticker != nil {
		t.Ticker.Stop()
	}
}
