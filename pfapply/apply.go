package pfapply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"gwstated/config"
)

// Options configures an Applier.
type Options struct {
	// KillStates (pf.kill_states) kills the states of a link that fails,
	// when another link is up, through a backend that is a StateKiller.
	KillStates bool
	// Gateways maps each link to its gateway (links[].gateway); it finds the
	// sticky classes pinned to a failing link, whose states die with it.
	Gateways map[string]netip.Addr
	// Logger receives one line per change; nil discards.
	Logger *slog.Logger
}

// OptionsFromConfig takes KillStates and Gateways from a configuration.
func OptionsFromConfig(cfg *config.Config, log *slog.Logger) Options {
	o := Options{KillStates: cfg.PF.KillStates, Gateways: map[string]netip.Addr{}, Logger: log}
	for _, l := range cfg.Links {
		o.Gateways[l.Name] = l.Gateway
	}
	return o
}

// Result is what one Apply or Repair did, for logs and metrics.
type Result struct {
	Changed   []string // anchors whose rules differed from what the backend holds, in load order
	Validated int      // anchors validated
	Loaded    int      // anchors loaded
	Route     bool     // the default route was set
	Killed    []string // labels whose states were killed
	Recorded  bool     // the backend recorded seq and hash (Recorder)
}

// Ops is the number of backend operations (validations, loads, route
// change, state kills) — with the pfctl backend, the number of pfctl and
// route invocations, except that a route change that has to fall back to
// add is two.
func (r Result) Ops() int {
	n := r.Validated + r.Loaded + len(r.Killed)
	if r.Route {
		n++
	}
	return n
}

// Applier brings a backend to a Ruleset and keeps track of what the
// backend actually holds, so that a retry after a failure, or a repair
// after drift, touches only what is still wrong. An Applier starts knowing
// nothing: its first Apply loads every anchor (replacing an anchor is
// hitless, so this is safe whatever pf held). Methods are safe for
// concurrent use; they run one at a time.
//
// Apply does not retry: it returns an error (ErrValidate, ErrLoad, ErrRoute,
// ErrKillStates, wrapped) and the caller calls Apply again with the same or
// a newer Ruleset after a Backoff delay. Nothing loaded before the failure
// is loaded again.
type Applier struct {
	b    Backend
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	cur     map[string]Anchor // what the backend holds, by anchor name; absent: unknown
	route   netip.Addr        // default route the backend holds; zero: unknown
	pending []string          // labels whose states still have to be killed

	// Notes of loads for the state kills (see noteLoad, settleKills).
	goneLinks  []string              // links whose nat/pass anchors were emptied
	goneLabels map[string][]string   // link → labels those anchors held
	movedFrom  map[string]netip.Addr // sticky label → gateway it alone routed to
	movedOrder []string              // movedFrom's labels in the order noted
	last       Ruleset               // last Ruleset passed to Apply
	lastSeq    uint64
	recorded   bool // last/lastSeq are recorded
	haveLast   bool
}

// NewApplier returns an Applier driving b.
func NewApplier(b Backend, opts Options) *Applier {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Applier{b: b, opts: opts, log: log, cur: map[string]Anchor{},
		goneLabels: map[string][]string{}, movedFrom: map[string]netip.Addr{}}
}

// Apply brings the backend to next, for verdict seq:
//
//  1. every changed anchor (text differs from what the backend holds, or
//     unknown) is validated; if any fails, nothing is loaded;
//  2. changed anchors are loaded, each replaced in one step, in the order
//     that never leaves a packet without a rule: nat and pass anchors of
//     links coming back first, then the balancing anchors (applications,
//     loadbalance), then the anchors of links going away last;
//  3. the default route is changed, if it differs (a ruleset without one,
//     all links down, leaves the route alone);
//  4. with Options.KillStates, the states of each link that went away are
//     killed — only when another link is up;
//  5. a Recorder backend records seq and hash.
//
// Unchanged anchors are not touched. On error the anchors loaded so far
// stay (the order keeps them consistent) and the error names the step and
// the anchor.
func (a *Applier) Apply(ctx context.Context, next Ruleset, seq uint64) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.haveLast || a.lastSeq != seq || a.last.Hash != next.Hash {
		a.recorded = false
	}
	a.last, a.lastSeq, a.haveLast = next, seq, true
	return a.apply(ctx, next, seq)
}

func (a *Applier) apply(ctx context.Context, next Ruleset, seq uint64) (Result, error) {
	var res Result
	for _, an := range next.Anchors {
		if err := CheckAnchorName(an.Name); err != nil {
			return res, fmt.Errorf("%w: %w", ErrValidate, err)
		}
	}
	p := plan(a.cur, next.Anchors)
	for _, s := range p.loads {
		res.Changed = append(res.Changed, s.Name)
	}
	if len(p.loads) > 0 {
		res.Validated = len(p.loads)
		if err := a.b.Validate(ctx, p.loads); err != nil {
			a.log.Error("pf rules refused, nothing loaded", "seq", seq, "anchors", res.Changed, "err", err)
			return res, fmt.Errorf("%w: %w", ErrValidate, err)
		}
	}
	for i, s := range p.loads {
		if err := a.b.Load(ctx, s); err != nil {
			a.log.Error("anchor load failed", "seq", seq, "anchor", s.Name, "link", s.Link, "loaded", res.Loaded, "of", len(p.loads), "err", err)
			return res, fmt.Errorf("%w: anchor %q (%d of %d; the %d before it are loaded): %w", ErrLoad, s.Name, i+1, len(p.loads), i, err)
		}
		res.Loaded++
		a.noteLoad(p.prevOf[s.Name], s)
		if slices.Contains(p.removed, s.Name) {
			delete(a.cur, s.Name)
		} else {
			a.cur[s.Name] = s
		}
		a.log.Info("anchor loaded", "seq", seq, "anchor", s.Name, "link", s.Link, "empty", s.Rules == "")
	}
	for _, r := range p.removed {
		delete(a.cur, r)
	}
	a.settleKills(next, seq)
	if gw := next.DefaultRoute; gw.IsValid() && gw != a.route {
		if err := a.b.SetDefaultRoute(ctx, gw); err != nil {
			a.log.Error("default route not set", "seq", seq, "gateway", gw, "err", err)
			return res, fmt.Errorf("%w: %v: %w", ErrRoute, gw, err)
		}
		a.route = gw
		res.Route = true
		a.log.Info("default route set", "seq", seq, "gateway", gw)
	}
	if k, ok := a.b.(StateKiller); ok && a.opts.KillStates {
		for len(a.pending) > 0 {
			lb := a.pending[0]
			if err := k.KillStates(ctx, lb); err != nil {
				a.log.Error("state kill failed", "seq", seq, "label", lb, "err", err)
				return res, fmt.Errorf("%w: label %q: %w", ErrKillStates, lb, err)
			}
			a.pending = a.pending[1:]
			res.Killed = append(res.Killed, lb)
			a.log.Info("states killed", "seq", seq, "label", lb)
		}
	} else {
		a.pending = nil
	}
	if r, ok := a.b.(Recorder); ok && !a.recorded {
		if err := r.Record(ctx, seq, next.Hash); err != nil {
			return res, fmt.Errorf("recording seq %d: %w", seq, err)
		}
		a.recorded = true
		res.Recorded = true
	}
	return res, nil
}

// noteLoad remembers, for the state kills after the loads, what a load
// took away: the labels of a nat or pass anchor that was emptied, and the
// sticky rules of a balancing anchor that stopped routing to a gateway.
// The notes survive a failed Apply, so a retry kills what the first
// attempt's loads made necessary.
func (a *Applier) noteLoad(prev, now Anchor) {
	if prev.Rules == "" {
		return
	}
	if now.Kind != KindBalance {
		if now.Rules != "" || now.Link == "" {
			return
		}
		if !slices.Contains(a.goneLinks, now.Link) {
			a.goneLinks = append(a.goneLinks, now.Link)
		}
		for _, r := range splitRules(prev.Rules) {
			if l, _ := ruleFeatures(r); l != "" && !slices.Contains(a.goneLabels[now.Link], l) {
				a.goneLabels[now.Link] = append(a.goneLabels[now.Link], l)
			}
		}
		return
	}
	still := map[string]netip.Addr{}
	for _, r := range splitRules(now.Rules) {
		if gw, ok := singleRouteTo(r); ok {
			l, _ := ruleFeatures(r)
			still[l] = gw
		}
	}
	for _, r := range splitRules(prev.Rules) {
		gw, ok := singleRouteTo(r)
		if !ok {
			continue
		}
		if l, _ := ruleFeatures(r); l != "" && still[l] != gw {
			a.movedFrom[l] = gw
			a.movedOrder = append(a.movedOrder, l)
		}
	}
}

// settleKills runs once every load of an Apply succeeded: each link whose
// nat/pass anchors were emptied and that is still out of use has its states
// queued for killing — the labels its anchors held, and the sticky classes
// that routed to its gateway alone — when Options.KillStates is on and
// another link is up. The round-robin rule's label is never queued (see
// Pfctl). The notes are then cleared.
func (a *Applier) settleKills(next Ruleset, seq uint64) {
	defer func() {
		a.goneLinks, a.movedOrder = nil, nil
		clear(a.goneLabels)
		clear(a.movedFrom)
	}()
	if !a.opts.KillStates {
		return
	}
	for _, link := range a.goneLinks {
		if linkInUse(next.Anchors, link) {
			continue // back before the states were killed
		}
		if !otherLinkUp(next.Anchors, link) {
			a.log.Info("states of failed link kept: no other link is up", "seq", seq, "link", link)
			continue
		}
		labels := slices.Clone(a.goneLabels[link])
		if gw, ok := a.opts.Gateways[link]; ok {
			for _, l := range a.movedOrder {
				if a.movedFrom[l] == gw && !slices.Contains(labels, l) {
					labels = append(labels, l)
				}
			}
		}
		for _, l := range labels {
			if !slices.Contains(a.pending, l) {
				a.pending = append(a.pending, l)
			}
		}
	}
}

// Drift is what one Repair found and did.
type Drift struct {
	Checked int      // anchors read back
	Drifted []string // anchors whose rules differed from what was loaded
	Result  Result   // the reload of the drifted anchors
}

// Repair reads back every anchor the backend should hold (ReadAnchor) and
// reloads those that differ from what was loaded (someone flushed or
// replaced them by hand), with the same validation and ordering as Apply.
// It compares with SameRules; see there for what a comparison can miss. The
// default route is not read back. Repair before the first Apply does
// nothing.
func (a *Applier) Repair(ctx context.Context) (Drift, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var d Drift
	if !a.haveLast {
		return d, nil
	}
	var errs []error
	for _, an := range a.last.Anchors {
		want, ok := a.cur[an.Name]
		if !ok {
			continue // not loaded yet: the reload below loads it anyway
		}
		got, err := a.b.ReadAnchor(ctx, an.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading anchor %q: %w", an.Name, err))
			continue
		}
		d.Checked++
		if !SameRules(want.Rules, got) {
			d.Drifted = append(d.Drifted, an.Name)
			delete(a.cur, an.Name)
		}
	}
	if len(d.Drifted) > 0 {
		a.log.Warn("pf anchors drifted from the applied rules; reloading", "seq", a.lastSeq, "anchors", d.Drifted)
	}
	res, err := a.apply(ctx, a.last, a.lastSeq)
	d.Result = res
	return d, errors.Join(append(errs, err)...)
}

// Holds reports whether the backend is known to hold rs: every anchor
// loaded as given and the default route set (when rs has one).
func (a *Applier) Holds(rs Ruleset) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, an := range rs.Anchors {
		c, ok := a.cur[an.Name]
		if !ok || c.Rules != an.Rules {
			return false
		}
	}
	return !rs.DefaultRoute.IsValid() || rs.DefaultRoute == a.route
}

// loadPlan is the ordered work of one Apply.
type loadPlan struct {
	loads   []Anchor          // in load order
	removed []string          // anchors held but absent from the next Ruleset (emptied, in loads)
	prevOf  map[string]Anchor // what the backend held before, by anchor name
}

// plan orders the loads from cur (what the backend holds; absent means
// unknown) to next. It is pure.
//
// Phases: (1) nat/pass anchors that end non-empty while a link is coming
// back (or while anything is unknown), (2) balancing anchors, (3) other
// changed nat/pass anchors — those of links going away, and those that only
// lose rules for them. Within a phase, the canonical order of next.
func plan(cur map[string]Anchor, next []Anchor) loadPlan {
	p := loadPlan{prevOf: map[string]Anchor{}}
	var changed []Anchor
	returning := false
	inNext := map[string]bool{}
	for _, an := range next {
		inNext[an.Name] = true
		c, known := cur[an.Name]
		if known {
			p.prevOf[an.Name] = c
			if c.Rules == an.Rules {
				continue
			}
		}
		changed = append(changed, an)
		if an.Kind != KindBalance && an.Rules != "" && (!known || c.Rules == "") {
			returning = true
		}
	}
	// Anchors no longer rendered (a link removed from the config) are
	// emptied last.
	var gone []string
	for name := range cur {
		if !inNext[name] {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	for _, name := range gone {
		c := cur[name]
		p.prevOf[name] = c
		p.removed = append(p.removed, name)
		if c.Rules != "" {
			changed = append(changed, Anchor{Name: name, Kind: c.Kind, Link: c.Link})
		}
	}
	phase := func(an Anchor) int {
		switch {
		case an.Kind == KindBalance:
			return 2
		case an.Rules != "" && returning:
			return 1
		default:
			return 3
		}
	}
	for ph := 1; ph <= 3; ph++ {
		for _, an := range changed {
			if phase(an) == ph {
				p.loads = append(p.loads, an)
			}
		}
	}
	return p
}

// linkInUse reports whether link has a non-empty nat or pass anchor.
func linkInUse(anchors []Anchor, link string) bool {
	for _, an := range anchors {
		if an.Kind != KindBalance && an.Link == link && an.Rules != "" {
			return true
		}
	}
	return false
}

// otherLinkUp reports whether a link other than link has a non-empty nat
// anchor in the ruleset.
func otherLinkUp(anchors []Anchor, link string) bool {
	for _, an := range anchors {
		if an.Kind == KindNAT && an.Link != link && an.Rules != "" {
			return true
		}
	}
	return false
}

// singleRouteTo returns the one gateway a rule routes to; false for a pool
// ("route-to { ... }") or a rule without route-to. The legacy form
// "route-to (fxp0 198.51.100.100)" is understood.
func singleRouteTo(rule string) (netip.Addr, bool) {
	f := strings.Fields(rule)
	for i, t := range f {
		if t != "route-to" || i+1 >= len(f) {
			continue
		}
		n := f[i+1]
		if strings.HasPrefix(n, "{") {
			return netip.Addr{}, false
		}
		if strings.HasPrefix(n, "(") && !strings.HasSuffix(n, ")") && i+2 < len(f) {
			n = f[i+2] // (fxp0 198.51.100.100)
		}
		s, ok := parseAddrToken(n)
		if !ok {
			return netip.Addr{}, false
		}
		ad, err := netip.ParseAddr(s)
		return ad, err == nil
	}
	return netip.Addr{}, false
}
