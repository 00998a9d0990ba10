package nftapply

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gwstated/config"
)

// Sentinel errors of Apply; test with errors.Is.
var (
	// ErrValidate: the table was refused (by nft -c, or by the nft -f
	// transaction when nothing had to precede it, each after the rule
	// swap or its check was refused); nothing was touched.
	ErrValidate = errors.New("nft table refused, nothing changed")
	// ErrHostile: a Plan that Render never makes (bad names, control
	// characters, include directives): refused before any command runs.
	ErrHostile = errors.New("plan refused")
	// ErrRoute: a routing table or the default route could not be set.
	ErrRoute = errors.New("route not set")
	// ErrRule: an ip rule could not be added or deleted.
	ErrRule = errors.New("ip rule not changed")
	// ErrLoad: the nft transaction failed (the old table stays whole).
	ErrLoad = errors.New("nft table not loaded")
	// ErrKillStates: deleting a dead link's conntrack entries failed.
	ErrKillStates = errors.New("conntrack entries not deleted")
	// ErrRead: the kernel state could not be read back.
	ErrRead = errors.New("kernel state not read")
)

// Options configures an Applier.
type Options struct {
	// KillStates (nft.kill_states) deletes the conntrack entries of a link
	// that stops being ready, once another link is active.
	KillStates bool
	// RulePriorities is gwstated's ip rule priority range (inclusive):
	// rules there that no Plan wants are deleted.
	FirstPriority, LastPriority int
	// Killer deletes a dead link's conntrack entries (step 4 of Apply);
	// nil: ExecKiller through the Applier's Runner (conntrack -D). The
	// agent gives a NetlinkKiller (in-process ctnetlink, no process).
	Killer StateKiller
	// Routes writes the routes and rules (steps 2 and 5 of Apply); nil:
	// ExecRouteWriter through the Runner (one ip -batch). The agent gives
	// a NetlinkRouteWriter (in-process rtnetlink, no process).
	Routes RouteWriter
	// Logger receives one line per change; nil discards.
	Logger *slog.Logger
	// Now is the clock of Result's phase durations; nil is time.Now.
	Now func() time.Time
	// NFTables, when set, carries the netlink rule swap: a table change
	// that only changes rules inside chains is sent as one nf_tables
	// batch, with no process (NetlinkConn). nil: every change is nft -f.
	NFTables NFTables
}

// OptionsFromConfig takes the options from a configuration.
func OptionsFromConfig(cfg *config.Config, log *slog.Logger) Options {
	first, last := cfg.NFT.RulePriorities(len(cfg.Links))
	return Options{KillStates: cfg.NFT.KillStates, FirstPriority: first, LastPriority: last, Logger: log}
}

// Result is what one Apply did: every kernel write, for logs and metrics.
type Result struct {
	Validated    bool     // the table was checked on the packet path (not validated ahead): the swap's check batch, in-process, or nft -c
	Commands     int      // processes that write: nft -f, ip -batch, conntrack -D (not the in-process netlink writes)
	Table        bool     // the table was replaced (one transaction)
	Swapped      bool     // ... by the netlink rule swap (no process), not nft -f
	Routes       []string // routing tables' routes set
	RulesAdded   []string
	RulesDeleted []string
	DefaultRoute bool     // the main default route was replaced
	Killed       []uint32 // marks whose conntrack entries were deleted
	Errors       []string // routes of links not ready that could not be set (retried at the next Apply/Repair)

	// Phases of the Apply, from its start (Options.Now); 0 when the step
	// wrote nothing.
	TableIn      time.Duration // the nft transaction returned (the new table is in force)
	StatesKilled time.Duration // the last conntrack deletion returned
}

// Writes is the number of kernel writes: the table, each route and rule,
// each mark's conntrack deletion (Commands counts the processes that
// carried them: one ip -batch holds several).
func (r Result) Writes() int {
	n := len(r.Routes) + len(r.RulesAdded) + len(r.RulesDeleted) + len(r.Killed)
	if r.Table {
		n++
	}
	if r.DefaultRoute {
		n++
	}
	return n
}

// Applier brings the kernel to a Plan. Its first Apply reads what the
// kernel holds (a restarted agent adopts its own table: nothing is written
// when it already equals the Plan); after that it tracks what it wrote, so
// an unchanged Plan runs no command at all. Repair re-reads the kernel.
// Methods are safe for concurrent use; they run one at a time.
type Applier struct {
	r      Runner
	opts   Options
	killer StateKiller
	routes RouteWriter
	log    *slog.Logger
	now    func() time.Time

	vmu   sync.Mutex
	valid map[[sha256.Size]byte]bool // tables nft accepted (validCache)

	mu       sync.Mutex
	known    bool
	k        Kernel
	last     Plan
	haveLast bool
	repair   bool // Repair's apply: the table is loaded with nft -f
}

// NewApplier returns an Applier running commands through r.
func NewApplier(r Runner, opts Options) *Applier {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	killer := opts.Killer
	if killer == nil {
		killer = ExecKiller{R: r}
	}
	routes := opts.Routes
	if routes == nil {
		routes = ExecRouteWriter{R: r}
	}
	return &Applier{r: r, opts: opts, killer: killer, routes: routes, log: log, now: now}
}

// Apply brings the kernel to p, for verdict seq, in the order that never
// sends a packet where nothing waits for it, with the writes that move
// flows first and as few processes as the order allows:
//
//  1. the whole change is validated before anything is touched: a table
//     already validated (Prevalidate, or loaded or swapped in before: a
//     cache by the hash of the text) needs nothing; else, when routes or
//     rules must go in before the table, the rule swap's batch sent as a
//     check (in-process: the kernel validates it and aborts it), or nft -c
//     when there is no swap or its check refused it, checks it; else the
//     transaction of step 3 (the swap, or nft -f) is itself the check (it
//     is atomic: a refused table changes nothing, and nothing was written
//     before it);
//  2. every link's routing table gets its default route, and the rules the
//     plan adds go in (fwmark rules of links becoming ready, source rules),
//     before any mark points at them (Options.Routes: in-process over
//     rtnetlink in the agent, else one `ip -batch`);
//  3. the table is replaced in one nf_tables transaction: the netlink
//     rule swap when only rules inside chains change and
//     Options.NFTables is set, else (or when the kernel refuses the swap,
//     which then changed nothing) nft -f;
//  4. with KillStates, while another link is active, the conntrack entries
//     carrying the mark of each link that stopped being ready are deleted
//     (Options.Killer: in-process over ctnetlink in the agent, no process);
//  5. the main default route is replaced (a plan without one leaves it)
//     and the rules the plan no longer has are deleted, last, as in 2.
//
// A link failure is thus the table (the swap, or nft -f), the state kill,
// the route and rule writes — with the agent's in-process writers no
// process at all: the table and the state kill, which move the flows,
// come before the rest. What
// already holds is not written: an unchanged Plan costs nothing. On error,
// what was done stays; the caller calls Apply again (a Backoff) and only
// what is still missing is written.
func (a *Applier) Apply(ctx context.Context, p Plan, seq uint64) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last, a.haveLast = p, true
	return a.apply(ctx, p, seq)
}

// ipOp is one line of an `ip -batch` and what it changes.
type ipOp struct {
	line  string
	route *Route // route replace (Table 0: the main default route)
	rule  *Rule  // rule add, or rule del with del
	del   bool
}

func (a *Applier) apply(ctx context.Context, p Plan, seq uint64) (Result, error) {
	var res Result
	start := a.now()
	if err := CheckPlan(p); err != nil {
		return res, err
	}
	if !a.known {
		k, err := ReadKernel(ctx, a.r, p, a.opts.FirstPriority, a.opts.LastPriority)
		if err != nil {
			return res, fmt.Errorf("%w: %w", ErrRead, err)
		}
		a.k, a.known = k, true
	}
	script := Script(p)
	tableChanged := a.k.Table != p.Table

	ready := map[string]bool{}
	for _, l := range p.Links {
		ready[l.Name] = l.Ready
	}
	var before []ipOp
	for _, rt := range p.Routes {
		if !sameRoute(a.k.Routes[rt.Table], rt) {
			before = append(before, ipOp{line: "route replace " + rt.String(), route: &rt})
		}
	}
	held := map[string]bool{}
	for _, r := range a.k.Rules {
		held[ruleKey(r)] = true
	}
	want := map[string]bool{}
	for _, r := range p.Rules {
		key := ruleKey(r)
		want[key] = true
		if !held[key] {
			held[key] = true
			before = append(before, ipOp{line: "rule add " + key, rule: &r})
		}
	}

	// 1. validate
	cached := tableChanged && a.isValid(script)
	trySwap := true
	if tableChanged && !cached && len(before) > 0 {
		res.Validated = true
		if b, ok := a.swapFor(p, seq); !ok {
			trySwap = false
		} else if err := a.opts.NFTables.Commit(ctx, b.CheckOnly()); err != nil {
			a.log.Warn("nft rule swap refused by its check, nothing changed; checking with nft -c", "seq", seq, "chains", b.Chains, "err", err)
			trySwap = false
		}
		if !trySwap {
			if _, err := a.r.Run(ctx, []byte(script), "nft", "-c", "-f", "-"); err != nil {
				a.log.Error("nft table refused, nothing changed", "seq", seq, "err", err)
				return res, fmt.Errorf("%w: %w", ErrValidate, err)
			}
		}
		a.markValid(script)
	}

	// 2. routes and the rules to add
	if len(before) > 0 {
		if err := a.batch(ctx, p, seq, before, ready, &res); err != nil {
			return res, err
		}
	}

	// 3. the table, in one transaction: the rule swap when only rules
	// change, else (or when the kernel refuses the swap) nft -f
	if tableChanged {
		var chains []string
		swapped := false
		if trySwap {
			chains, swapped = a.swap(ctx, p, seq)
		}
		if !swapped {
			res.Commands++
			if _, err := a.r.Run(ctx, []byte(script), "nft", "-f", "-"); err != nil {
				if !cached && len(before) == 0 {
					a.log.Error("nft table refused, nothing changed", "seq", seq, "err", err)
					return res, fmt.Errorf("%w: %w", ErrValidate, err)
				}
				a.log.Error("nft table not loaded", "seq", seq, "err", err)
				return res, fmt.Errorf("%w: %w", ErrLoad, err)
			}
		}
		// Accepted, by nft or by the kernel as a swap of the same rules:
		// a later Apply of this table needs no nft -c.
		a.markValid(script)
		res.TableIn = a.now().Sub(start)
		a.k.Table = p.Table
		res.Table, res.Swapped = true, swapped
		if swapped {
			a.log.Info("nft rules swapped", "seq", seq, "table", "inet "+p.TableName, "chains", chains, "hash", p.Hash)
		} else {
			a.log.Info("nft table loaded", "seq", seq, "table", "inet "+p.TableName, "hash", p.Hash, "validated_ahead", cached)
		}
	}

	// 4. conntrack entries of links that stopped being ready
	anyActive := slices.ContainsFunc(p.Links, func(l LinkPlan) bool { return l.Active })
	var gone []Rule
	for _, r := range a.k.Rules {
		if !want[ruleKey(r)] {
			gone = append(gone, r)
		}
	}
	if a.opts.KillStates && anyActive {
		for _, r := range gone {
			if r.Fwmark == 0 || r.From.IsValid() || slices.ContainsFunc(p.Rules, func(w Rule) bool { return w.Fwmark == r.Fwmark }) {
				continue
			}
			procs, err := a.killer.KillMark(ctx, p.Family, r.Fwmark)
			res.Commands += procs
			if err != nil {
				return res, fmt.Errorf("%w: mark %s: %w", ErrKillStates, hexMark(r.Fwmark), err)
			}
			res.Killed = append(res.Killed, r.Fwmark)
			res.StatesKilled = a.now().Sub(start)
			a.log.Info("conntrack entries deleted", "seq", seq, "mark", hexMark(r.Fwmark))
		}
	}

	// 5. main default route; old rules
	var after []ipOp
	if !p.DefaultRoute.IsZero() && !sameRoute(a.k.DefaultRoute, p.DefaultRoute) {
		after = append(after, ipOp{line: "route replace " + p.DefaultRoute.String(), route: &p.DefaultRoute})
	}
	for _, r := range gone {
		after = append(after, ipOp{line: "rule del " + ruleKey(r), rule: &r, del: true})
	}
	if len(after) > 0 {
		if err := a.batch(ctx, p, seq, after, ready, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// swap replaces the rules of the chains that differ between the table the
// kernel holds and p's, as one nf_tables batch, when the two tables have
// the same skeleton and Options.NFTables is set, outside Repair. Repair
// loads with nft -f: drift is rare and off the packet path, and should a
// swapped table ever list differently from Render's text (an nft other
// than the one the tests compare with), a repair by swap would never
// converge, one by nft -f does. false: nft -f must load
// the table (first load, skeleton change, a Plan not made by Render, or
// the kernel refused the batch, which then changed nothing: logged once,
// nft -f reports its own error text if the table is bad).
func (a *Applier) swap(ctx context.Context, p Plan, seq uint64) ([]string, bool) {
	b, ok := a.swapFor(p, seq)
	if !ok {
		return nil, false
	}
	if err := a.opts.NFTables.Commit(ctx, b); err != nil {
		a.log.Warn("nft rule swap refused, nothing changed; loading with nft -f", "seq", seq, "chains", b.Chains, "err", err)
		return nil, false
	}
	return b.Chains, true
}

// swapFor is the rule swap from the table the kernel holds to p's; false
// when there is none (see swap).
func (a *Applier) swapFor(p Plan, seq uint64) (Batch, bool) {
	if a.opts.NFTables == nil || a.repair {
		return Batch{}, false
	}
	chains, ok := swapPlan(a.k.Table, p)
	if !ok {
		return Batch{}, false
	}
	b, err := swapBatch(p.rules, chains)
	if err != nil {
		a.log.Debug("nft rule swap not encodable; using nft", "seq", seq, "err", err)
		return Batch{}, false
	}
	return b, true
}

// batch runs ops through the RouteWriter (one `ip -force -batch -`, or
// rtnetlink in-process; every op is tried, each failed one is named) and
// records in a.k and res what took effect.
// A failed route of a link not in use is a warning (its probes need the
// route, its traffic does not; retried at the next Apply or Repair); any
// other failure is the error returned, after every op was tried. When
// the writer cannot say which ops failed (ip's output does not, or
// rtnetlink did not open), the kernel is read again at the next Apply.
func (a *Applier) batch(ctx context.Context, p Plan, seq uint64, ops []ipOp, ready map[string]bool, res *Result) error {
	failed, procs, err := a.routes.writeOps(ctx, p.Family, ops)
	res.Commands += procs
	if err != nil {
		a.known = false
		if ops[0].route != nil {
			return fmt.Errorf("%w: %s: %w", ErrRoute, ops[0].line, err)
		}
		return fmt.Errorf("%w: %s: %w", ErrRule, ops[0].line, err)
	}
	var first error
	fail := func(e error) {
		if first == nil {
			first = e
		}
	}
	for i, o := range ops {
		msg, bad := failed[i+1]
		switch {
		case o.route != nil && bad:
			rt := *o.route
			if rt.Table != 0 && !ready[rt.Link] {
				a.log.Warn("routing table of a link not in use not set", "seq", seq, "link", rt.Link, "err", msg)
				res.Errors = append(res.Errors, "ip route replace "+rt.String()+": "+msg)
				continue
			}
			if rt.Table == 0 {
				fail(fmt.Errorf("%w: default via %s: %s", ErrRoute, rt.Gateway, msg))
			} else {
				fail(fmt.Errorf("%w: link %s: %s", ErrRoute, rt.Link, msg))
			}
		case o.route != nil:
			rt := *o.route
			if rt.Table == 0 {
				a.k.DefaultRoute = rt
				res.DefaultRoute = true
				a.log.Info("default route set", "seq", seq, "link", rt.Link, "gateway", rt.Gateway)
			} else {
				a.k.Routes[rt.Table] = rt
				res.Routes = append(res.Routes, rt.String())
				a.log.Info("routing table set", "seq", seq, "link", rt.Link, "route", rt.String())
			}
		case bad:
			fail(fmt.Errorf("%w: %s: %s", ErrRule, ruleKey(*o.rule), msg))
		case o.del:
			key := ruleKey(*o.rule)
			a.k.Rules = slices.DeleteFunc(a.k.Rules, func(r Rule) bool { return ruleKey(r) == key })
			res.RulesDeleted = append(res.RulesDeleted, key)
			a.log.Info("ip rule deleted", "seq", seq, "rule", key)
		default:
			key := ruleKey(*o.rule)
			a.k.Rules = append(a.k.Rules, *o.rule)
			res.RulesAdded = append(res.RulesAdded, key)
			a.log.Info("ip rule added", "seq", seq, "link", o.rule.Link, "rule", key)
		}
	}
	return first
}

// batchFailures reads `ip -force -batch` error output: each failed line
// is reported as its error text followed by "Command failed -:N".
// It returns line number → error text.
func batchFailures(stderr string) map[int]string {
	out := map[int]string{}
	var msg []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if n, ok := strings.CutPrefix(l, "Command failed -:"); ok {
			if i, err := strconv.Atoi(n); err == nil && i > 0 {
				out[i] = strings.Join(msg, "; ")
			}
			msg = nil
			continue
		}
		if l != "" {
			msg = append(msg, l)
		}
	}
	return out
}

// Drift is what one Repair found and did.
type Drift struct {
	Found  []string // what differed from the last Plan
	Result Result   // the writes that repaired it
}

// Repair re-reads the kernel (the table, the routing tables, the rules in
// gwstated's range, the main default route) and writes back whatever
// differs from the last applied Plan, with Apply's ordering. Repair before
// the first Apply does nothing.
func (a *Applier) Repair(ctx context.Context) (Drift, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var d Drift
	if !a.haveLast {
		return d, nil
	}
	p := a.last
	k, err := ReadKernel(ctx, a.r, p, a.opts.FirstPriority, a.opts.LastPriority)
	if err != nil {
		return d, fmt.Errorf("%w: %w", ErrRead, err)
	}
	if k.Table != p.Table {
		if k.Table == "" {
			d.Found = append(d.Found, "table inet "+p.TableName+" is missing")
		} else {
			d.Found = append(d.Found, "table inet "+p.TableName+" was changed")
		}
	}
	for _, rt := range p.Routes {
		if !sameRoute(k.Routes[rt.Table], rt) {
			d.Found = append(d.Found, "table "+strconv.FormatUint(uint64(rt.Table), 10)+": want "+rt.String())
		}
	}
	held := map[string]bool{}
	for _, r := range k.Rules {
		held[ruleKey(r)] = true
	}
	want := map[string]bool{}
	for _, r := range p.Rules {
		want[ruleKey(r)] = true
		if !held[ruleKey(r)] {
			d.Found = append(d.Found, "missing rule: "+ruleKey(r))
		}
	}
	for _, r := range k.Rules {
		if !want[ruleKey(r)] {
			d.Found = append(d.Found, "extra rule: "+ruleKey(r))
		}
	}
	if !p.DefaultRoute.IsZero() && !sameRoute(k.DefaultRoute, p.DefaultRoute) {
		d.Found = append(d.Found, "main: want "+p.DefaultRoute.String())
	}
	if len(d.Found) > 0 {
		a.log.Warn("kernel state drifted from the applied plan; repairing", "found", d.Found)
	}
	a.k, a.known = k, true
	a.repair = true
	d.Result, err = a.apply(ctx, p, 0)
	a.repair = false
	return d, err
}

// CheckPlan refuses a Plan that Render would never make, before any of it
// reaches a command line or nft: names that are not [a-z0-9_-], interface
// names that could be options or end a string, table text with control
// characters, include directives or more than 1 MiB.
func CheckPlan(p Plan) error {
	if !safeName(p.TableName, 63) {
		return fmt.Errorf("%w: table name %q", ErrHostile, p.TableName)
	}
	if p.Family != 4 && p.Family != 6 {
		return fmt.Errorf("%w: family %d", ErrHostile, p.Family)
	}
	if len(p.Table) > 1<<20 || !utf8.ValidString(p.Table) {
		return fmt.Errorf("%w: table text is not valid UTF-8 under 1 MiB", ErrHostile)
	}
	for i, r := range p.Table {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return fmt.Errorf("%w: control character %U at byte %d of the table", ErrHostile, r, i)
		}
	}
	if !strings.HasPrefix(p.Table, "table inet "+p.TableName+" {\n") {
		return fmt.Errorf("%w: the text does not define table inet %s", ErrHostile, p.TableName)
	}
	for _, line := range strings.Split(p.Table, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == "include" || f[0] == "table" && line != "table inet "+p.TableName+" {" || f[0] == "flush" || f[0] == "delete") {
			return fmt.Errorf("%w: %q outside the table definition", ErrHostile, line)
		}
	}
	routes := append([]Route{p.DefaultRoute}, p.Routes...)
	for _, rt := range routes {
		if rt.IsZero() {
			continue
		}
		if !safeIfname(rt.Dev) || rt.Gateway.Zone() != "" || (rt.Gateway.Is4() != (p.Family == 4)) {
			return fmt.Errorf("%w: route %q", ErrHostile, rt.String())
		}
	}
	for _, r := range p.Rules {
		if r.Priority < 1 || r.Priority > 32765 || r.From.IsValid() && (r.From.Zone() != "" || r.From.Is4() != (p.Family == 4)) {
			return fmt.Errorf("%w: rule %q", ErrHostile, r.String())
		}
	}
	return nil
}

// sameRoute compares routes as the kernel holds them (not the link name).
func sameRoute(a, b Route) bool {
	return a.Table == b.Table && a.Gateway == b.Gateway && a.Dev == b.Dev
}
