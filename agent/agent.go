package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"gwstated/cluster"
	"gwstated/cluster/etcdmember"
	"gwstated/config"
	"gwstated/internal/backoff"
	"gwstated/internal/execrun"
	"gwstated/linkstate"
	"gwstated/nftapply"
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
	Runner     execrun.Runner
	NFTRunner  nftapply.Runner // dataplane: nft; nil: nftapply.ExecRunner
	// NFTables carries nftapply's netlink rule swap (dataplane: nft).
	// nil: nftapply.NetlinkConn in the namespace an ExecRunner runs in
	// (this one when NFTRunner is nil); with another NFTRunner (a test's)
	// and NFTables nil, every table change is nft -f through NFTRunner.
	NFTables nftapply.NFTables
	// LocalAddrs lists this node's addresses for the VRRP role; nil:
	// redundancy.LocalAddrs.
	LocalAddrs func() ([]netip.Addr, error)
	// Tools are the paths of pfctl(8), route(8) and ifconfig(8) the pfctl
	// backend and the CARP code run (empty: /sbin/...). The lab points
	// them at its OpenBSD emulator (lab/pfemu) with gwstated's hidden
	// --lab-pf-tools flag.
	Tools   Tools
	Backoff backoff.Backoff
	// WriteFile writes the state file (nil: atomicfile.WriteFile).
	WriteFile WriteFileFunc
	// Applied is called after every apply attempt with its record (tests).
	Applied func(cluster.AppliedRecord)
}

// Tools are the paths of the OpenBSD programs the agent runs.
type Tools struct {
	Pfctl, Route, Ifconfig string
	// RulesDir replaces pf.dir (the pfctl backend's rule files) when set:
	// the lab's firewalls share one file system and one config.
	RulesDir string
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
	o   Options
	log *slog.Logger
	m   *metrics
	cfg *config.Config
	dp  Dataplane  // nil on a witness
	red Redundancy // nil: no demotion, no roles to read

	cur      cluster.VerdictRecord // the verdict to be in force
	have     bool
	applied  linkstate.Verdict // last verdict applied without error
	lastRec  *cluster.AppliedRecord
	gen      *generation
	embErr   <-chan error // the embedded etcd member's fatal errors
	attempt  int          // failed applies in a row of the current verdict
	retryDue bool         // an apply just failed: (re)arm the retry timer

	// Demotion hold (see demote): when this node's current impairment
	// began, and when a demotion still held back falls due (zero: none).
	impairedSince time.Time
	demoteDue     time.Time

	started time.Time // Run began: verdicts decided before are not timed

	verdictProblem string // last problem logged about a verdict's links (verdictcheck.go)

	// The local state file (state.go): the last error writing it ("" when
	// the last write succeeded), and the content still to be written.
	stateErr string
	stateDue *stateFile
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
	a := &agent{o: o, cfg: cfg, log: o.Log.With("node", cfg.Node), started: time.Now()}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		// go_goroutines, process_resident_memory_bytes...: what a leak shows in (lab/chaos reads them).
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
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
		if a.dp, a.red, err = newDataplane(ctx, cfg, o); err != nil {
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
		emb, err := etcdmember.Start(ctx, cfg, o.Log)
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

	if bg, ok := a.dp.(backgrounder); ok {
		bctx, cancel := context.WithCancel(ctx)
		defer cancel() // before wg.Wait (defers run in reverse)
		wg.Go(func() { bg.Run(bctx) })
	}

	gen, err := a.start(ctx, cfg)
	if err != nil {
		return err
	}
	a.gen = gen
	defer func() { a.gen.stop() }()
	return a.loop(ctx)
}

// backgrounder is a Dataplane with work to do off the agent's loop
// (the nft data plane validates likely next tables ahead): Run until ctx
// ends.
type backgrounder interface {
	Run(ctx context.Context)
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

// restrictPaths is everything the agent reaches on disk once running
// (unveil(2) on OpenBSD; see privsep.go).
func restrictPaths(o Options, cfg *config.Config) Paths {
	// A firewall node runs unveiled but unpledged (see Promises: pledge
	// cannot express the prober's raw-socket options); a witness has no
	// prober and runs no programs, so it is pledged too.
	p := Paths{Config: o.ConfigPath, Exec: DefaultExec, Pledge: cfg.IsWitness(), Witness: cfg.IsWitness()}
	if cfg.IsWitness() {
		p.Exec = nil
	} else if t := o.Tools; t.Pfctl != "" || t.Route != "" || t.Ifconfig != "" {
		p.Exec = nil
		for i, def := range []string{t.Pfctl, t.Route, t.Ifconfig} {
			if def == "" {
				def = DefaultExec[i]
			}
			p.Exec = append(p.Exec, def)
		}
	}
	g := cfg.Gossip()
	e := cfg.Cluster.Etcd
	p.Read = append(p.Read, g.KeyFile, e.PasswordFile, e.TLS.CA, e.TLS.Cert, e.TLS.Key)
	p.Write = append(p.Write, o.StateDir)
	if !cfg.IsWitness() && !o.DryRun {
		p.Write = append(p.Write, cfg.PF.Dir)
		if o.Tools.RulesDir != "" {
			p.Write = append(p.Write, o.Tools.RulesDir)
		}
	}
	if em := cfg.Embed(); em != nil {
		p.Write = append(p.Write, em.DataDir)
	}
	return p
}
