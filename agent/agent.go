package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/pfapply"
	"gwstated/probe"
)

// Prober is what the agent needs of probe.Prober.
type Prober interface {
	Run(ctx context.Context, emit func(linkstate.Observation)) error
}

// Node is what the agent needs of cluster.Node.
type Node interface {
	Run(ctx context.Context) error
	Verdicts() <-chan cluster.VerdictRecord
	Publish(obs linkstate.Observation)
	SetCARP(carp []cluster.CARPStatus)
	ReportApplied(ctx context.Context, a cluster.AppliedRecord) error
	Status() cluster.Status
}

// Options configure Run. Only ConfigPath (or LoadConfig) is required.
type Options struct {
	ConfigPath string // --config
	Node       string // --node; empty: the file's node:, else the host name
	Witness    bool   // --witness: etcd member and gossip only; no probes, no pf
	DryRun     bool   // --dry-run: dir backend into StateDir/anchors whatever pf.backend says
	StateDir   string // --state-dir: state.json and dry-run output
	Version    string
	Log        *slog.Logger
	// Reload receives a value for every SIGHUP: the config is read and
	// checked again, and applied only when it is valid.
	Reload <-chan struct{}
	// Registry receives the agent's metrics (default: a new registry,
	// served on metrics.listen).
	Registry *prometheus.Registry

	// Test and lab hooks; nil means the real thing.
	LoadConfig func() (*config.Config, error)
	NewProber  func(cfg *config.Config, log *slog.Logger) (Prober, error)
	NewNode    func(cfg *config.Config, log *slog.Logger) (Node, error)
	Runner     pfapply.Runner
	Backoff    pfapply.Backoff
	// Applied is called after every apply attempt with its record (tests).
	Applied func(cluster.AppliedRecord)
}

// ErrConfig wraps a configuration that cannot be loaded at start-up.
var ErrConfig = errors.New("configuration")

// generation is one running set of cluster node and prober for one config;
// a reload that changes what they use replaces the generation.
type generation struct {
	node   Node
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errc   chan error // fatal errors of the node or the prober
}

type agent struct {
	o       Options
	log     *slog.Logger
	m       *metrics
	cfg     *config.Config
	applier *pfapply.Applier
	pf      pfapply.Backend
	backend string
	runner  pfapply.Runner
	demoter *pfapply.Demoter
	carpIfs []string

	cur      cluster.VerdictRecord // the verdict to be in force
	have     bool
	applied  linkstate.Verdict // last verdict applied without error
	lastRec  *cluster.AppliedRecord
	gen      *generation
	embErr   <-chan error // the embedded etcd member's fatal errors
	attempt  int          // failed applies in a row of the current verdict
	retryDue bool         // an apply just failed: (re)arm the retry timer
}

// Run runs the agent until ctx ends: on start it applies the last verdict
// it knows (the local state file; then etcd's), then probes, gossips,
// decides with the cluster and applies every verdict. When ctx ends it
// resigns leadership, leaves gossip and leaves pf as it is.
func Run(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.LoadConfig == nil {
		path, node := o.ConfigPath, o.Node
		o.LoadConfig = func() (*config.Config, error) { return config.Load(path, node) }
	}
	cfg, err := o.LoadConfig()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg.Witness = o.Witness
	a := &agent{o: o, cfg: cfg, log: o.Log.With("node", cfg.Node)}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a.m = newMetrics(reg, cfg)
	if o.StateDir == "" {
		return fmt.Errorf("%w: no state directory (--state-dir)", ErrConfig)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if em := cfg.Embed(); em != nil && em.DataDir != "" {
		if err := os.MkdirAll(em.DataDir, 0o700); err != nil {
			return fmt.Errorf("cluster.etcd.embed.data_dir: %w", err)
		}
	}
	if !cfg.IsWitness() {
		if err := a.setupPF(cfg); err != nil {
			return err
		}
		if err := a.boot(ctx); err != nil {
			a.log.Warn("no local state applied at start", "err", err)
		}
	}
	if err := Restrict(restrictPaths(o, cfg)); err != nil {
		return fmt.Errorf("privilege reduction: %w", err)
	}
	if cfg.Embed() != nil {
		// The member joins its cluster once a quorum of initial_cluster is
		// up; the rules of the state file are already in force meanwhile.
		a.log.Info("starting the embedded etcd member", "data_dir", cfg.Embed().DataDir)
		emb, err := cluster.StartEmbedded(ctx, cfg, o.Log)
		if err != nil {
			return fmt.Errorf("embedded etcd member: %w", err)
		}
		defer emb.Close() // after the node has stopped (defers run in reverse)
		a.embErr = emb.Err()
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	if cfg.Metrics.Listen != "" {
		srv, err := serveMetrics(cfg.Metrics.Listen, reg)
		if err != nil {
			return err
		}
		wg.Go(func() { _ = srv.Serve() })
		defer srv.Close()
	}

	gen, err := a.start(ctx, cfg)
	if err != nil {
		return err
	}
	a.gen = gen
	defer func() { a.gen.stop() }()
	return a.loop(ctx)
}

// setupPF builds the backend, applier, CARP demoter and reader.
func (a *agent) setupPF(cfg *config.Config) error {
	a.runner = a.o.Runner
	if a.runner == nil {
		a.runner = pfapply.ExecRunner{}
	}
	var b pfapply.Backend
	switch {
	case a.o.DryRun || cfg.PF.Backend == "dir":
		dir := cfg.PF.Dir
		if a.o.DryRun {
			dir = filepath.Join(a.o.StateDir, "anchors")
		}
		// The dir backend is for machines without pf (the lab, tests,
		// --dry-run): commands that would change the system (CARP
		// demotion) are written to a log instead of run.
		a.runner = &logRunner{path: filepath.Join(a.o.StateDir, "dry-run.log")}
		d, err := pfapply.NewDir(dir)
		if err != nil {
			return err
		}
		b, a.backend = d, "dir"
	default:
		p, err := pfapply.NewPfctl(a.runner, pfapply.PfctlOptions{Dir: cfg.PF.Dir, Rtable: cfg.PF.Rtable})
		if err != nil {
			return err
		}
		b, a.backend = p, "pfctl"
		a.carpIfs = cfg.CARP.Interfaces
	}
	a.pf = b
	a.applier = pfapply.NewApplier(b, pfapply.OptionsFromConfig(cfg, a.log))
	if cfg.CARP.Demote > 0 {
		d, err := pfapply.NewDemoter(a.runner, "", cfg.CARP.Group, cfg.CARP.Demote)
		if err != nil {
			return err
		}
		a.demoter = d
	}
	return nil
}

// boot applies the verdict of the local state file, so a restarted node
// has rules before its probes settle and even when etcd is unreachable.
func (a *agent) boot(ctx context.Context) error {
	st, ok, err := readState(a.o.StateDir)
	if err != nil || !ok {
		return err
	}
	a.log.Info("applying the last verdict from the local state file", "seq", st.Verdict.Seq)
	a.cur, a.have = st.Verdict, true
	a.apply(ctx, nil)
	return nil
}

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
			newProber = func(cfg *config.Config, log *slog.Logger) (Prober, error) { return probe.New(cfg, log) }
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
			if a.applier == nil { // witness
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
		case <-drift.C:
			a.repair(ctx)
		case <-slow.C:
			st := g.node.Status()
			a.m.status(st)
			a.readCARP(ctx, g.node)
		case <-a.o.Reload:
			if a.reload(ctx) {
				drift.Stop()
				drift = newTicker(a.cfg.PF.DriftInterval)
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

// apply renders the current verdict and brings pf to it. A failure leaves
// the previous rules in force where possible, is reported in
// applied/<node> and a metric, and is retried with backoff.
func (a *agent) apply(ctx context.Context, node Node) {
	if !a.have || a.applier == nil {
		return
	}
	v := a.cur.Verdict
	log := a.log.With("seq", v.Seq)
	start := time.Now()
	rs, err := pfapply.Render(a.cfg, v)
	var res pfapply.Result
	if err == nil {
		res, err = a.applier.Apply(ctx, rs, v.Seq)
	}
	a.m.applyDur.Observe(time.Since(start).Seconds())
	a.m.applyOps.Add(float64(res.Ops()))
	rec := cluster.AppliedRecord{Node: a.cfg.Node, Seq: v.Seq, Hash: rs.Hash, Time: time.Now(), Backend: a.backend}
	if err != nil {
		a.attempt++
		a.retryDue = true
		a.m.applyErrors.Inc()
		rec.Error = err.Error()
		log.Error("apply failed; the previous rules stay where they were not replaced, retrying",
			"err", err, "attempt", a.attempt, "retry_in", a.o.Backoff.Delay(a.attempt-1))
	} else {
		a.attempt = 0
		if len(res.Changed) > 0 || res.Route {
			log.Info("verdict applied", "active", v.Active, "changed", res.Changed, "route", rs.DefaultRoute,
				"killed", res.Killed, "hash", short(rs.Hash), "took", time.Since(start))
		}
		for name, lv := range v.Links {
			if p, ok := a.applied.Links[name]; !ok || p.State != lv.State {
				log.Info("link verdict", "link", name, "state", lv.State, "reason", lv.Reason)
			}
		}
		a.m.verdictApplied(a.applied, v, rs.Hash)
		a.applied = v
		if err := writeState(a.o.StateDir, stateFile{Verdict: a.cur, Hash: rs.Hash, Time: rec.Time}); err != nil {
			log.Warn("cannot save the local state file; a restart without etcd would start without it", "err", err)
		}
		a.demote(ctx, v)
	}
	a.lastRec = &rec
	if a.o.Applied != nil {
		a.o.Applied(rec)
	}
	if node != nil {
		a.report(ctx, node, rec)
	}
}

func (a *agent) report(ctx context.Context, node Node, rec cluster.AppliedRecord) {
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Cluster.Etcd.RequestTimeout)
	defer cancel()
	if err := node.ReportApplied(rctx, rec); err != nil {
		if errors.Is(err, cluster.ErrEtcdUnreachable) {
			a.log.Debug("applied record kept until etcd is back", "seq", rec.Seq)
		} else {
			a.log.Warn("cannot write applied record", "seq", rec.Seq, "err", err)
		}
	}
}

// demote lowers this node's CARP priority while it is impaired (it sees an
// up link down) so the healthy peer becomes master, and undoes it after.
func (a *agent) demote(ctx context.Context, v linkstate.Verdict) {
	if a.demoter == nil {
		return
	}
	var impaired []string
	for _, im := range v.Impaired {
		if im.Node == a.cfg.Node {
			impaired = append(impaired, im.Link)
		}
	}
	changed, err := a.demoter.Set(ctx, len(impaired) > 0)
	if err != nil {
		a.log.Error("carp demotion failed", "err", err, "impaired_links", impaired)
		return
	}
	if changed {
		if len(impaired) > 0 {
			a.log.Warn("this node is impaired: demoting its carp group so the peer becomes master",
				"links", impaired, "by", a.cfg.CARP.Demote, "group", a.cfg.CARP.Group)
		} else {
			a.log.Info("no longer impaired: carp demotion removed", "group", a.cfg.CARP.Group)
		}
	}
	d := 0.0
	if a.demoter.Demoted() {
		d = 1
	}
	a.m.demoted.Set(d)
}

// repair reloads anchors someone changed by hand.
func (a *agent) repair(ctx context.Context) {
	if a.applier == nil || a.attempt > 0 {
		return
	}
	d, err := a.applier.Repair(ctx)
	if len(d.Drifted) > 0 {
		a.m.drift.Add(float64(len(d.Drifted)))
		a.log.Warn("repaired drifted anchors", "anchors", d.Drifted, "seq", a.applied.Seq)
	}
	if err != nil {
		a.log.Error("drift check failed", "err", err)
	}
}

func (a *agent) readCARP(ctx context.Context, node Node) {
	if len(a.carpIfs) == 0 {
		return
	}
	var out []cluster.CARPStatus
	for _, ifn := range a.carpIfs {
		vh, err := pfapply.ReadCARP(ctx, a.runner, "", ifn)
		if err != nil {
			a.log.Warn("cannot read carp state", "interface", ifn, "err", err)
			continue
		}
		for _, v := range vh {
			out = append(out, cluster.CARPStatus{Interface: v.Interface, State: v.State})
		}
	}
	node.SetCARP(out)
}

// reload reads the configuration again. An invalid config, or one that
// does not render to valid rules for the verdict in force, is refused and
// the agent keeps running on the old one.
func (a *agent) reload(ctx context.Context) bool {
	g := a.gen
	cfg, err := a.o.LoadConfig()
	if err == nil {
		cfg.Witness = a.o.Witness
	}
	if err == nil && a.have && a.applier != nil {
		var rs pfapply.Ruleset
		if rs, err = pfapply.Render(cfg, a.cur.Verdict); err == nil {
			err = a.pf.Validate(ctx, rs.Anchors)
		}
	}
	if err == nil && (cfg.PF.Backend != a.cfg.PF.Backend || cfg.PF.Dir != a.cfg.PF.Dir || cfg.Node != a.cfg.Node) {
		err = errors.New("pf.backend, pf.dir and the node name change only with a restart")
	}
	if err != nil {
		a.m.reloads.WithLabelValues("invalid").Inc()
		a.log.Error("config reload refused; still running on the previous config", "err", err)
		return false
	}
	a.m.reloads.WithLabelValues("ok").Inc()
	old := a.cfg
	a.cfg = cfg
	a.m.config(cfg)
	if cfg.Hash() == old.Hash() {
		a.log.Info("config reloaded: unchanged")
		return false
	}
	if a.applier != nil {
		// A new Applier knows nothing of what pf holds, so its first Apply
		// replaces every anchor once; replacing is hitless.
		a.applier = pfapply.NewApplier(a.pf, pfapply.OptionsFromConfig(cfg, a.log))
	}
	if sameRuntime(old, cfg) {
		a.log.Info("config reloaded: re-rendering the verdict in force")
		a.apply(ctx, g.node)
		return true
	}
	a.log.Info("config reloaded: restarting probes and cluster membership with the new config")
	g.stop()
	ng, err := a.start(ctx, cfg)
	if err != nil {
		// The old generation is gone; without a node the agent cannot go on.
		a.log.Error("cannot start with the reloaded config", "err", err)
		a.gen = &generation{errc: make(chan error, 1), node: g.node}
		a.gen.errc <- err
		return true
	}
	a.gen = ng
	a.apply(ctx, ng.node)
	return true
}

// sameRuntime reports whether two configs need the same cluster node and
// prober: only pf rendering, sticky classes, CARP and metrics differ.
func sameRuntime(a, b *config.Config) bool {
	strip := func(c *config.Config) []byte {
		x := *c
		x.PF, x.Sticky, x.CARP, x.Metrics = config.PF{}, nil, config.CARP{}, config.Metrics{}
		x.Links = slices.Clone(c.Links)
		for i := range x.Links {
			x.Links[i].NatTo = netip.Addr{}
		}
		j, _ := json.Marshal(x)
		return j
	}
	return string(strip(a)) == string(strip(b))
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// metricsServer serves /metrics.
type metricsServer struct {
	ln  net.Listener
	srv *http.Server
}

func serveMetrics(addr string, reg *prometheus.Registry) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return &metricsServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

func (m *metricsServer) Serve() error { return m.srv.Serve(m.ln) }
func (m *metricsServer) Close() error { return m.srv.Close() }

// restrictPaths is everything the agent reaches on disk once running
// (unveil(2) on OpenBSD; see privsep.go).
func restrictPaths(o Options, cfg *config.Config) Paths {
	// A firewall node runs unveiled but unpledged (see Promises: pledge
	// cannot express the prober's raw-socket options); a witness has no
	// prober and runs no programs, so it is pledged too.
	p := Paths{Config: o.ConfigPath, Exec: DefaultExec, Pledge: cfg.IsWitness(), Witness: cfg.IsWitness()}
	if cfg.IsWitness() {
		p.Exec = nil
	}
	g := cfg.Gossip()
	e := cfg.Cluster.Etcd
	p.Read = append(p.Read, g.KeyFile, e.PasswordFile, e.TLS.CA, e.TLS.Cert, e.TLS.Key)
	p.Write = append(p.Write, o.StateDir)
	if !cfg.IsWitness() && !o.DryRun {
		p.Write = append(p.Write, cfg.PF.Dir)
	}
	if em := cfg.Embed(); em != nil {
		p.Write = append(p.Write, em.DataDir)
	}
	return p
}
