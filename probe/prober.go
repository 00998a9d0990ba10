package probe

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gwstated/config"
	"gwstated/linkstate"
)

// DefaultHeartbeat is how often an unchanged link's Observation is re-emitted.
const DefaultHeartbeat = time.Second

// ErrConfig is wrapped by New's errors about the probe configuration.
var ErrConfig = errors.New("probe configuration")

type options struct {
	transport Transport
	netns     string
	heartbeat time.Duration
	retry     time.Duration
}

// Option configures New.
type Option func(*options)

// WithTransport replaces the ICMP transport (tests use a fake one).
func WithTransport(t Transport) Option { return func(o *options) { o.transport = t } }

// WithNetns opens the ICMP sockets inside the network namespace bound at
// path (e.g. /var/run/netns/NAME; Linux only). The prober itself keeps
// running in the caller's namespace; see the package documentation.
func WithNetns(path string) Option { return func(o *options) { o.netns = path } }

// WithHeartbeat sets how often an unchanged Observation is re-emitted
// (default DefaultHeartbeat).
func WithHeartbeat(d time.Duration) Option { return func(o *options) { o.heartbeat = d } }

// WithRetry sets the first back-off before a target whose socket failed is
// tried again (default 1s, doubling up to 30s).
func WithRetry(d time.Duration) Option { return func(o *options) { o.retry = d } }

// Prober probes every link of the configuration.
type Prober struct {
	log       *slog.Logger
	tr        Transport
	heartbeat time.Duration
	retry     time.Duration
	links     []*runner
	started   atomic.Bool

	mu   sync.Mutex // serialises emit; guards seq and snap
	seq  uint64
	snap map[string]linkstate.Observation
}

// runner is one link's state, owned by its loop goroutine.
type runner struct {
	link   *Link
	params Params
	specs  []Spec
	trk    []tracker
	ev     chan event
}

type evKind uint8

const (
	evSent evKind = iota
	evReplied
	evSendFailed
	evFailed // the transport gave up on the target
)

type event struct {
	kind   evKind
	target int
	seq    uint64
	rtt    time.Duration
	at     time.Time
	err    error
}

// ParamsFor resolves a link's probe parameters: its own fields, the zero
// ones from its profile (config.Profiles).
func ParamsFor(l config.Link) (Params, config.Probe) {
	c := config.Config{Links: []config.Link{l}}
	c.ApplyDefaults()
	p := c.Links[0].Probe
	return Params{
		Interval: p.Interval, Timeout: p.Timeout, Fall: p.Fall, Rise: p.Rise, Window: p.Window,
		LossDown: float64(p.LossDown), LossUp: float64(p.LossUp), RTTDown: p.RTTDown,
	}, p
}

// New prepares a prober for every link in cfg; nothing is sent before Run.
func New(cfg *config.Config, log *slog.Logger, opts ...Option) (*Prober, error) {
	o := options{heartbeat: DefaultHeartbeat, retry: time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.heartbeat <= 0 || o.retry <= 0 {
		return nil, fmt.Errorf("%w: heartbeat %v and retry %v must be positive", ErrConfig, o.heartbeat, o.retry)
	}
	if o.transport == nil {
		o.transport = &ICMP{Netns: o.netns, Log: log}
	}
	p := &Prober{log: log, tr: o.transport, heartbeat: o.heartbeat, retry: o.retry, snap: map[string]linkstate.Observation{}}
	total := 0
	for i, l := range cfg.Links {
		params, pc := ParamsFor(l)
		if err := params.Validate(); err != nil {
			return nil, fmt.Errorf("%w: links[%d].probe (%s): %v", ErrConfig, i, l.Name, err)
		}
		if len(pc.Targets) == 0 {
			return nil, fmt.Errorf("%w: links[%d].probe (%s): no targets and no gateway", ErrConfig, i, l.Name)
		}
		if pc.Need < 1 || pc.Need > len(pc.Targets) {
			return nil, fmt.Errorf("%w: links[%d].probe.need: %d with %d targets: want 1..%d", ErrConfig, i, pc.Need, len(pc.Targets), len(pc.Targets))
		}
		r := &runner{
			link:   NewLink(l.Name, pc.Need, pc.Targets, params),
			params: params,
			trk:    make([]tracker, len(pc.Targets)),
			ev:     make(chan event, 16*len(pc.Targets)),
		}
		src := cfg.ProbeSource(l.Name)
		for j, t := range pc.Targets {
			// The probe source serves the targets of its IP version; the
			// others are probed from the interface's address.
			s := src
			if s.IsValid() && s.Is4() != t.Is4() {
				s = netip.Addr{}
			}
			r.trk[j].timeout = params.Timeout
			r.specs = append(r.specs, Spec{Link: l.Name, Interface: l.Interface, Source: s, Target: t, Interval: params.Interval})
			total++
		}
		p.links = append(p.links, r)
	}
	// Spread the first requests of all targets evenly over the interval, in
	// configuration order, plus a deterministic per-target nudge of up to
	// half a slot, so 64 links × 4 targets never send together.
	g := 0
	for _, r := range p.links {
		for j := range r.specs {
			s := &r.specs[j]
			slot := s.Interval / time.Duration(total)
			h := fnv.New32a()
			h.Write([]byte(s.Link + "/" + s.Target.String()))
			s.Offset = time.Duration(g)*slot + time.Duration(h.Sum32())%(slot/2+1)
			g++
		}
	}
	return p, nil
}

// Specs returns what the transport is asked to probe, in configuration order.
func (p *Prober) Specs() []Spec {
	var specs []Spec
	for _, r := range p.links {
		specs = append(specs, r.specs...)
	}
	return specs
}

// Snapshot returns the last emitted Observation of every link.
func (p *Prober) Snapshot() map[string]linkstate.Observation {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.snap)
}

// Run probes until ctx ends, calling emit (never concurrently) with every
// link's Observation when its state changes, at start (Unknown) and every
// heartbeat. It returns nil when ctx ends, after every goroutine it started
// has finished, or an error wrapping ErrNoPrivilege when raw ICMP is
// refused. Run may be called once.
func (p *Prober) Run(ctx context.Context, emit func(linkstate.Observation)) error {
	if p.started.Swap(true) {
		return errors.New("probe: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		fatal error
	)
	fail := func(err error) {
		once.Do(func() { fatal = err })
		cancel()
	}
	for _, r := range p.links {
		wg.Go(func() { p.loop(ctx, r, emit) })
		for j := range r.specs {
			wg.Go(func() { p.pingLoop(ctx, r, j, fail) })
		}
	}
	wg.Wait()
	return fatal
}

// handler forwards a transport's events to the link loop; gen keeps the
// sequence numbers of successive Ping calls apart.
type handler struct {
	ctx    context.Context
	ev     chan<- event
	target int
	gen    uint64
}

func (h handler) send(e event) {
	e.target = h.target
	e.seq = h.gen<<40 | e.seq&(1<<40-1)
	select {
	case h.ev <- e:
	case <-h.ctx.Done():
	}
}

func (h handler) Sent(seq uint64, at time.Time) { h.send(event{kind: evSent, seq: seq, at: at}) }
func (h handler) Replied(seq uint64, rtt time.Duration, at time.Time) {
	h.send(event{kind: evReplied, seq: seq, rtt: rtt, at: at})
}
func (h handler) SendFailed(seq uint64, at time.Time, err error) {
	h.send(event{kind: evSendFailed, seq: seq, at: at, err: err})
}

// pingLoop runs the transport for one target, again after a back-off when
// it fails.
func (p *Prober) pingLoop(ctx context.Context, r *runner, j int, fail func(error)) {
	spec := r.specs[j]
	backoff := p.retry
	for gen := uint64(0); ; gen++ {
		h := handler{ctx: ctx, ev: r.ev, target: j, gen: gen}
		err := p.tr.Ping(ctx, spec, h)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrNoPrivilege) {
			fail(fmt.Errorf("probe: link %s target %v: %w", spec.Link, spec.Target, err))
			return
		}
		if err == nil {
			err = errors.New("transport stopped")
		}
		p.log.Warn("probe target failed", "link", spec.Link, "target", spec.Target, "err", err, "retry", backoff)
		h.send(event{kind: evFailed, at: time.Now(), err: err})
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
		spec.Offset = 0
	}
}

// loop owns one link: it turns events into results, results into state
// changes, and emits Observations.
func (p *Prober) loop(ctx context.Context, r *runner, emit func(linkstate.Observation)) {
	p.publish(r.link.Observation(), emit)
	deadline := time.NewTimer(time.Hour)
	deadline.Stop()
	defer deadline.Stop()
	hb := time.NewTicker(p.heartbeat)
	defer hb.Stop()
	var results []Result
	for {
		changed := false
		select {
		case <-ctx.Done():
			return
		case <-hb.C:
			p.publish(r.link.Observation(), emit)
			continue
		case <-deadline.C:
		case e := <-r.ev:
			k := &r.trk[e.target]
			switch e.kind {
			case evSent:
				k.sent(e.seq, e.at)
			case evReplied:
				k.replied(e.seq, e.rtt)
			case evSendFailed:
				k.failed(e.seq, e.at)
			case evFailed:
				t := r.link.Targets[e.target]
				if t.Fail(e.at) {
					p.logTarget(r, e.target)
					changed = true
				}
			}
		}
		now := time.Now()
		next := time.Time{}
		for j := range r.trk {
			results = r.trk[j].release(now, results[:0])
			for _, res := range results {
				if r.link.Targets[j].Observe(res) {
					p.logTarget(r, j)
					changed = true
				}
			}
			if d, ok := r.trk[j].deadline(); ok && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		if changed && r.link.Update(now) {
			o := r.link.Observation()
			p.publish(o, emit)
		}
		if !next.IsZero() {
			deadline.Reset(next.Sub(now))
		} else {
			deadline.Stop()
		}
	}
}

func (p *Prober) logTarget(r *runner, j int) {
	t := r.link.Targets[j]
	s, _, why := t.State()
	p.log.Info("probe target changed", "link", r.link.Name, "target", r.link.Addrs[j], "state", s,
		"reason", string(why), "loss", t.Loss())
}

func (p *Prober) publish(o linkstate.Observation, emit func(linkstate.Observation)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	o.Seq = p.seq
	prev, seen := p.snap[o.Link]
	p.snap[o.Link] = o
	if !seen || prev.State != o.State {
		p.log.Info("link state", "link", o.Link, "state", o.State, "seq", o.Seq, "loss", o.Loss, "rtt", o.RTT)
	}
	emit(o)
}
