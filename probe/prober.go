package probe

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gwstated/config"
	"gwstated/linkstate"
)

// DefaultHeartbeat is how often an unchanged link's Observation is re-emitted.
const DefaultHeartbeat = time.Second

// maxTargets is how many targets one prober can tell apart by echo
// identifier.
const maxTargets = 1 << 16

// sendSlots is how many times an interval the scheduler wakes up to send.
const sendSlots = 4

// ErrConfig is wrapped by New's errors about the probe configuration.
var ErrConfig = errors.New("probe configuration")

type options struct {
	transport Transport
	netns     string
	heartbeat time.Duration
	retry     time.Duration
	onTarget  func(TargetChange)
}

// TargetChange is one probe target's change of state, as the prober logs it
// ("probe target changed"): the agent counts them in a metric.
type TargetChange struct {
	Link   string
	Target netip.Addr
	State  linkstate.State
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

// WithRetry sets the first back-off before a source whose socket failed is
// tried again (default 1s, doubling up to 30s).
func WithRetry(d time.Duration) Option { return func(o *options) { o.retry = d } }

// WithTargetChanges has f called for every change of a probe target's
// state. It is called with the prober's state locked, like emit: it must
// return quickly and must not call the prober.
func WithTargetChanges(f func(TargetChange)) Option { return func(o *options) { o.onTarget = f } }

// Prober probes every link of the configuration.
type Prober struct {
	log       *slog.Logger
	tr        Transport
	heartbeat time.Duration
	retry     time.Duration
	onTarget  func(TargetChange) // nil: not reported
	grid      time.Duration      // the scheduler wakes on multiples of grid
	sendGrid  time.Duration      // and sends on multiples of sendGrid
	links     []*runner
	targets   []*target // by echo identifier - idBase
	sources   []*source
	idBase    uint16
	started   atomic.Bool

	// mu guards everything below and the state of links, targets and
	// sources once Run has started; emit is called with it held, so never
	// concurrently.
	mu      sync.Mutex
	emit    func(linkstate.Observation)
	seq     uint64
	snap    map[string]linkstate.Observation
	queue   targetHeap
	wakeAt  time.Time     // when the scheduler wakes next
	wake    chan struct{} // an earlier wake is needed
	closed  bool          // Run is ending: replies are dropped
	results []Result
	outbox  []outgoing // requests recorded as sent, to be sent once mu is released
	batch   []Request  // the scheduler's buffer for a BatchSender (not under mu)
}

// outgoing is a request the scheduler sends outside the lock, so that the
// receive goroutines are not held up by the sends.
type outgoing struct {
	t   *target
	ep  Endpoint
	seq uint64
}

// runner is one link.
type runner struct {
	link    *Link
	params  Params
	specs   []Spec
	targets []*target
}

// target is one probed address of a link.
type target struct {
	r    *runner
	j    int // index in the link
	id   uint16
	src  *source
	trk  tracker
	seq  uint64
	next time.Time // next request
	key  time.Time // next event (request or release), the heap's order
	hidx int
}

// source is one socket: a source address (or interface) and IP version,
// shared by every target probed from it.
type source struct {
	src     Source
	ep      Endpoint // nil while it cannot be opened
	targets []*target
	retryAt time.Time
	backoff time.Duration
	failing atomic.Int32 // sends failed in a row
}

// reopenAfter is how many sends in a row may fail before a socket is
// opened again, its source address resolved anew (the interface's address
// may have changed).
const reopenAfter = 64

type sourceKey struct {
	iface string
	addr  netip.Addr
	v6    bool
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
	p := &Prober{log: log, tr: o.transport, heartbeat: o.heartbeat, retry: o.retry, onTarget: o.onTarget,
		snap: map[string]linkstate.Observation{}, wake: make(chan struct{}, 1), idBase: uint16(rand.Uint32())}
	sources := map[sourceKey]*source{}
	minInterval := time.Duration(0)
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
		if minInterval == 0 || params.Interval < minInterval {
			minInterval = params.Interval
		}
		r := &runner{link: NewLink(l.Name, pc.Need, pc.Targets, params), params: params}
		src := cfg.ProbeSource(l.Name)
		for j, a := range pc.Targets {
			// The probe source serves the targets of its IP version; the
			// others are probed from the interface's address.
			s := src
			if s.IsValid() && s.Is4() != a.Is4() {
				s = netip.Addr{}
			}
			r.specs = append(r.specs, Spec{Link: l.Name, Interface: l.Interface, Source: s, Target: a, Interval: params.Interval})
			key := sourceKey{addr: s, v6: !a.Is4()}
			if !s.IsValid() {
				key.iface = l.Interface
			}
			so := sources[key]
			if so == nil {
				so = &source{src: Source{Link: l.Name, Interface: l.Interface, Addr: s, V6: key.v6}, backoff: o.retry}
				sources[key] = so
				p.sources = append(p.sources, so)
			}
			so.src.LinkLocal = so.src.LinkLocal || a.IsLinkLocalUnicast()
			if len(p.targets) == maxTargets {
				return nil, fmt.Errorf("%w: more than %d probe targets", ErrConfig, maxTargets)
			}
			t := &target{r: r, j: j, id: p.idBase + uint16(len(p.targets)), src: so, trk: newTracker(params)}
			so.targets = append(so.targets, t)
			r.targets = append(r.targets, t)
			p.targets = append(p.targets, t)
		}
		p.links = append(p.links, r)
	}
	// Requests due within one step of the send grid go out in one wake-up
	// of the scheduler: 1/4 of the shortest interval, at most 50 ms, so
	// the scheduler wakes 4 times an interval to send whatever the number
	// of links (each wake-up costs more than the requests it sends:
	// docs/probing.md). Rounding a target's phase up to the grid changes
	// no interval and no detection time: a request goes out at a fixed
	// offset from its phase. Misses are released on a finer grid, 1/32 of
	// the interval and at most 5 ms, which is all a deadline can be late
	// by.
	p.grid = min(minInterval/32, 5*time.Millisecond)
	p.sendGrid = min(minInterval/sendSlots, 50*time.Millisecond)
	// Spread the links evenly over the interval, in configuration order,
	// plus a deterministic per-link nudge of up to half a slot, so 64
	// links never send together. A link's targets share its phase: their
	// requests leave from one socket in one wake-up of the scheduler and
	// their replies come back together, so one wake-up of the receiving
	// goroutine reads them all.
	for i, r := range p.links {
		slot := r.params.Interval / time.Duration(len(p.links))
		h := fnv.New32a()
		h.Write([]byte(r.link.Name))
		off := time.Duration(i)*slot + time.Duration(h.Sum32())%(slot/2+1)
		for j := range r.specs {
			r.specs[j].Offset = off
		}
	}
	return p, nil
}

// Specs returns what is probed, in configuration order.
func (p *Prober) Specs() []Spec {
	var specs []Spec
	for _, r := range p.links {
		specs = append(specs, r.specs...)
	}
	return specs
}

// Sockets is how many sockets the prober has open: with the ICMP
// transport on Linux one per IP version in use, elsewhere one per source
// address (or interface without one) and IP version; with a transport
// that does not count them, the number of sources.
func (p *Prober) Sockets() int {
	if c, ok := p.tr.(interface{ Sockets() int }); ok {
		return c.Sockets()
	}
	return len(p.sources)
}

// Snapshot returns the last emitted Observation of every link.
func (p *Prober) Snapshot() map[string]linkstate.Observation {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.snap)
}

// Run probes until ctx ends, calling emit (never concurrently, and with the
// prober's state locked: it must not block) with every link's Observation
// when its state changes, at start (Unknown) and every heartbeat. It
// returns nil when ctx ends, after every goroutine it started has
// finished, or an error wrapping ErrNoPrivilege when raw ICMP is refused.
// Run may be called once.
//
// Run's own goroutine is the scheduler: it sends every target's requests
// and releases the misses; each endpoint's receive goroutine feeds the
// replies. So the prober runs 1 + (number of sockets) goroutines.
func (p *Prober) Run(ctx context.Context, emit func(linkstate.Observation)) error {
	if p.started.Swap(true) {
		return errors.New("probe: Run called twice")
	}
	p.mu.Lock()
	p.emit = emit
	now := time.Now()
	for _, r := range p.links {
		p.publish(r.link.Observation())
	}
	for i, t := range p.targets {
		t.next = now.Add(t.r.specs[t.j].Offset)
		t.key = p.onSendGrid(t.next)
		t.hidx = i
		p.queue = append(p.queue, t)
	}
	heap.Init(&p.queue)
	var err error
	for _, s := range p.sources {
		if err = p.open(s, now); err != nil {
			break
		}
	}
	p.mu.Unlock()
	if err == nil {
		err = p.schedule(ctx)
	}
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for _, s := range p.sources {
		if s.ep != nil {
			if cerr := s.ep.Close(); cerr != nil {
				p.log.Warn("probe: closing socket", "link", s.src.Link, "err", cerr)
			}
			s.ep = nil
		}
	}
	return err
}

// open opens a source's endpoint; when it fails, its targets are down and
// it is tried again after a back-off. It returns only ErrNoPrivilege.
func (p *Prober) open(s *source, now time.Time) error {
	ep, err := p.tr.Open(s.src, p.recv)
	if errors.Is(err, ErrNoPrivilege) {
		return fmt.Errorf("probe: %w", err)
	}
	if err != nil {
		p.log.Warn("probe socket failed", "link", s.src.Link, "interface", s.src.Interface, "source", s.src.Addr,
			"err", err, "retry", s.backoff)
		s.retryAt = now.Add(s.backoff)
		s.backoff = min(2*s.backoff, 30*time.Second)
		for _, t := range s.targets {
			if t.r.link.Targets[t.j].Fail(now) {
				p.logTarget(t)
				if t.r.link.Update(now) {
					p.publish(t.r.link.Observation())
				}
			}
		}
		return nil
	}
	s.ep, s.retryAt, s.backoff = ep, time.Time{}, p.retry
	for _, t := range s.targets {
		if t.next.Before(now) {
			t.next = now
		}
		p.requeue(t)
	}
	return nil
}

// schedule is the scheduler loop: it sleeps until the next request,
// release, retry or heartbeat is due, rounded up to the grid.
func (p *Prober) schedule(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Heartbeats go out on the send grid: with a wake-up that sends, not
	// one of their own.
	nextHB := p.onSendGrid(time.Now().Add(p.heartbeat))
	poller, _ := p.tr.(Poller)
	for {
		now := time.Now()
		if poller != nil {
			// The replies that came since the last wake-up, before any
			// deadline is looked at: a reply that arrived in time counts.
			poller.Poll(now)
		}
		p.mu.Lock()
		if err := p.due(now); err != nil {
			p.mu.Unlock()
			return err
		}
		if !now.Before(nextHB) {
			for _, r := range p.links {
				p.publish(r.link.Observation())
			}
			nextHB = p.onSendGrid(nextHB.Add(p.heartbeat * (now.Sub(nextHB)/p.heartbeat + 1)))
		}
		next := nextHB
		if len(p.queue) > 0 && p.queue[0].key.Before(next) {
			next = p.queue[0].key
		}
		for _, s := range p.sources {
			if s.ep == nil && !s.retryAt.IsZero() && s.retryAt.Before(next) {
				next = s.retryAt
			}
		}
		if poller != nil && len(p.outbox) > 0 {
			// Read the replies to these requests one step of the send
			// grid later, not only at the next wake-up that is due anyway
			// (a link's next request, an interval away when it is alone):
			// their state changes come no later than that. With many
			// links, every step of the grid sends anyway.
			next = minTime(next, p.onSendGrid(now.Add(1)))
		}
		next = p.onGrid(next)
		p.wakeAt = next
		out := p.outbox
		p.outbox = nil
		p.mu.Unlock()
		p.send(out, now)
		p.mu.Lock()
		if p.outbox == nil {
			p.outbox = out[:0] // reuse the buffer
		}
		p.mu.Unlock()
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-p.wake:
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// onGrid rounds t up to a multiple of the grid.
func (p *Prober) onGrid(t time.Time) time.Time { return roundUp(t, p.grid) }

// onSendGrid rounds t up to a multiple of the send grid.
func (p *Prober) onSendGrid(t time.Time) time.Time { return roundUp(t, p.sendGrid) }

func roundUp(t time.Time, g time.Duration) time.Time {
	if g <= 0 {
		return t
	}
	if r := time.Duration(t.UnixNano() % int64(g)); r != 0 {
		return t.Add(g - r)
	}
	return t
}

// due does what is due at now: retries, requests and releases.
func (p *Prober) due(now time.Time) error {
	for _, s := range p.sources {
		if s.ep == nil && !s.retryAt.IsZero() && !now.Before(s.retryAt) {
			if err := p.open(s, now); err != nil {
				return err
			}
		}
	}
	for len(p.queue) > 0 && !p.queue[0].key.After(now) {
		t := p.queue[0]
		if ep := t.src.ep; ep != nil && !t.next.After(now) {
			// Recorded as sent before it is: a reply finds it.
			t.trk.sent(t.seq, now)
			p.outbox = append(p.outbox, outgoing{t: t, ep: ep, seq: t.seq})
			t.seq++
			spec := &t.r.specs[t.j]
			// Keep the phase; skip the requests a stalled process missed.
			t.next = t.next.Add(spec.Interval * (now.Sub(t.next)/spec.Interval + 1))
		}
		p.release(t, now)
	}
	return nil
}

// send sends the requests due (without p.mu); a request that cannot be
// sent is a miss. A socket whose sends keep failing is closed and opened
// again at once.
func (p *Prober) send(out []outgoing, now time.Time) {
	var failed []outgoing
	var errs []error
	bs, batch := p.tr.(BatchSender)
	if batch {
		p.batch = p.batch[:0]
		for _, o := range out {
			p.batch = append(p.batch, Request{EP: o.ep, Dst: o.t.r.specs[o.t.j].Target, ID: o.t.id, Seq: o.seq})
		}
		bs.SendBatch(p.batch)
	}
	for i, o := range out {
		spec := &o.t.r.specs[o.t.j]
		var err error
		if batch {
			err, p.batch[i] = p.batch[i].Err, Request{}
		} else {
			err = o.ep.Send(spec.Target, o.t.id, o.seq)
		}
		if err != nil {
			p.log.Debug("probe send failed", "link", spec.Link, "target", spec.Target, "err", err)
			failed = append(failed, o)
			errs = append(errs, err)
		} else if o.t.src.failing.Load() != 0 {
			o.t.src.failing.Store(0)
		}
	}
	if len(failed) == 0 {
		return
	}
	p.mu.Lock()
	var stale []Endpoint
	for i, o := range failed {
		o.t.trk.sendFailed(o.seq)
		p.release(o.t, now)
		s := o.t.src
		if s.failing.Add(1) >= reopenAfter && s.ep == o.ep {
			p.log.Warn("probe socket fails to send: opening it again", "link", s.src.Link, "interface", s.src.Interface,
				"source", s.src.Addr, "err", errs[i])
			stale = append(stale, s.ep)
			s.ep, s.retryAt = nil, now
			s.failing.Store(0)
		}
	}
	p.mu.Unlock()
	for _, ep := range stale { // Close waits for the receiver, which may wait for p.mu
		if err := ep.Close(); err != nil {
			p.log.Warn("probe: closing socket", "err", err)
		}
	}
}

// recv takes a reply from an endpoint's receive goroutine.
func (p *Prober) recv(rp Reply) {
	i := int(rp.ID - p.idBase)
	if i >= len(p.targets) {
		return
	}
	t := p.targets[i]
	if t.r.specs[t.j].Target.WithZone("") != rp.From.Unmap().WithZone("") {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	t.trk.replied(rp.Seq, rp.At)
	p.release(t, rp.At)
	if p.onGrid(t.key).Before(p.wakeAt) {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// release feeds the target's final results to its state machine, emits a
// change of its link and requeues it.
func (p *Prober) release(t *target, now time.Time) {
	p.results = t.trk.release(now, p.results[:0])
	changed := false
	for _, res := range p.results {
		if t.r.link.Targets[t.j].Observe(res) {
			p.logTarget(t)
			changed = true
		}
	}
	if changed && t.r.link.Update(now) {
		p.publish(t.r.link.Observation())
	}
	p.requeue(t)
}

// requeue sets the target's next event: its next request (while its
// socket is open) on the send grid, or its next release on the grid,
// whichever is first.
func (p *Prober) requeue(t *target) {
	var key time.Time
	if t.src.ep != nil {
		key = p.onSendGrid(t.next)
	}
	if d, ok := t.trk.deadline(); ok {
		if d = p.onGrid(d); key.IsZero() || d.Before(key) {
			key = d
		}
	}
	if key.IsZero() {
		key = farFuture
	}
	if !key.Equal(t.key) {
		t.key = key
		heap.Fix(&p.queue, t.hidx)
	}
}

var farFuture = time.Unix(1<<62, 0)

func (p *Prober) logTarget(t *target) {
	tg := t.r.link.Targets[t.j]
	s, _, why := tg.State()
	p.log.Info("probe target changed", "link", t.r.link.Name, "target", t.r.link.Addrs[t.j], "state", s,
		"reason", string(why), "loss", tg.Loss(), "rto", t.trk.rto(), "srtt", t.trk.srtt)
	if p.onTarget != nil {
		p.onTarget(TargetChange{Link: t.r.link.Name, Target: t.r.link.Addrs[t.j], State: s})
	}
}

// publish emits o with the next sequence number; p.mu is held.
func (p *Prober) publish(o linkstate.Observation) {
	p.seq++
	o.Seq = p.seq
	prev, seen := p.snap[o.Link]
	p.snap[o.Link] = o
	if !seen || prev.State != o.State {
		p.log.Info("link state", "link", o.Link, "state", o.State, "seq", o.Seq, "loss", o.Loss, "rtt", o.RTT)
	}
	p.emit(o)
}

// targetHeap orders targets by their next event.
type targetHeap []*target

func (h targetHeap) Len() int           { return len(h) }
func (h targetHeap) Less(i, j int) bool { return h[i].key.Before(h[j].key) }
func (h targetHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *targetHeap) Push(x any) { t := x.(*target); t.hidx = len(*h); *h = append(*h, t) }
func (h *targetHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
