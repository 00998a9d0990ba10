package nftapply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"gwstated/config"
)

// Sentinel errors of Apply; test with errors.Is.
var (
	// ErrValidate: nft -c refused the table; nothing was touched.
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
	// Logger receives one line per change; nil discards.
	Logger *slog.Logger
}

// OptionsFromConfig takes the options from a configuration.
func OptionsFromConfig(cfg *config.Config, log *slog.Logger) Options {
	first, last := cfg.NFT.RulePriorities(len(cfg.Links))
	return Options{KillStates: cfg.NFT.KillStates, FirstPriority: first, LastPriority: last, Logger: log}
}

// Result is what one Apply did: every kernel write, for logs and metrics.
type Result struct {
	Validated    bool     // nft -c ran
	Table        bool     // the table was replaced (one transaction)
	Routes       []string // routing tables' routes set
	RulesAdded   []string
	RulesDeleted []string
	DefaultRoute bool     // the main default route was replaced
	Killed       []uint32 // marks whose conntrack entries were deleted
	Errors       []string // routes of links not ready that could not be set (retried at the next Apply/Repair)
}

// Writes is the number of kernel writes (commands that change state).
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
	r    Runner
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	known    bool
	k        Kernel
	last     Plan
	haveLast bool
}

// NewApplier returns an Applier running commands through r.
func NewApplier(r Runner, opts Options) *Applier {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Applier{r: r, opts: opts, log: log}
}

// Apply brings the kernel to p, for verdict seq, in the order that never
// sends a packet where nothing waits for it:
//
//  1. the new table is checked with nft -c; if refused, nothing is touched;
//  2. every link's routing table gets its default route, and the rules the
//     plan adds go in (fwmark rules of links becoming ready, source rules),
//     before any mark points at them;
//  3. the table is replaced in one nft transaction;
//  4. the main default route is replaced (a plan without one leaves it);
//  5. with KillStates, while another link is active, the conntrack entries
//     carrying the mark of each link that stopped being ready are deleted;
//  6. the rules the plan no longer has are deleted, last.
//
// What already holds is not written: an unchanged Plan costs nothing. On
// error, what was done stays; the caller calls Apply again (a Backoff)
// and only what is still missing is written.
func (a *Applier) Apply(ctx context.Context, p Plan, seq uint64) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last, a.haveLast = p, true
	return a.apply(ctx, p, seq)
}

func (a *Applier) apply(ctx context.Context, p Plan, seq uint64) (Result, error) {
	var res Result
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
	fam := famFlag(p.Family)
	tableChanged := a.k.Table != p.Table

	// 1. validate
	if tableChanged {
		res.Validated = true
		if _, err := a.r.Run(ctx, []byte(Script(p)), "nft", "-c", "-f", "-"); err != nil {
			a.log.Error("nft table refused, nothing changed", "seq", seq, "err", err)
			return res, fmt.Errorf("%w: %w", ErrValidate, err)
		}
	}

	// 2. routes and the rules to add
	ready := map[string]bool{}
	for _, l := range p.Links {
		ready[l.Name] = l.Ready
	}
	for _, rt := range p.Routes {
		if sameRoute(a.k.Routes[rt.Table], rt) {
			continue
		}
		args := append([]string{fam, "route", "replace"}, strings.Fields(rt.String())...)
		if _, err := a.r.Run(ctx, nil, "ip", args...); err != nil {
			if !ready[rt.Link] {
				// A link not in use whose interface is down: its probes
				// need the route, its traffic does not; retried later.
				a.log.Warn("routing table of a link not in use not set", "seq", seq, "link", rt.Link, "err", err)
				res.Errors = append(res.Errors, err.Error())
				continue
			}
			return res, fmt.Errorf("%w: link %s: %w", ErrRoute, rt.Link, err)
		}
		a.k.Routes[rt.Table] = rt
		res.Routes = append(res.Routes, rt.String())
		a.log.Info("routing table set", "seq", seq, "link", rt.Link, "route", rt.String())
	}
	held := map[string]bool{}
	for _, r := range a.k.Rules {
		held[ruleKey(r)] = true
	}
	want := map[string]bool{}
	for _, r := range p.Rules {
		key := ruleKey(r)
		want[key] = true
		if held[key] {
			continue
		}
		args := append([]string{fam, "rule", "add"}, strings.Fields(key)...)
		if _, err := a.r.Run(ctx, nil, "ip", args...); err != nil {
			return res, fmt.Errorf("%w: %s: %w", ErrRule, key, err)
		}
		held[key] = true
		a.k.Rules = append(a.k.Rules, r)
		res.RulesAdded = append(res.RulesAdded, key)
		a.log.Info("ip rule added", "seq", seq, "link", r.Link, "rule", key)
	}

	// 3. the table, in one transaction
	if tableChanged {
		if _, err := a.r.Run(ctx, []byte(Script(p)), "nft", "-f", "-"); err != nil {
			a.log.Error("nft table not loaded", "seq", seq, "err", err)
			return res, fmt.Errorf("%w: %w", ErrLoad, err)
		}
		a.k.Table = p.Table
		res.Table = true
		a.log.Info("nft table loaded", "seq", seq, "table", "inet "+p.TableName, "hash", p.Hash)
	}

	// 4. main default route
	if !p.DefaultRoute.IsZero() && !sameRoute(a.k.DefaultRoute, p.DefaultRoute) {
		args := append([]string{fam, "route", "replace"}, strings.Fields(p.DefaultRoute.String())...)
		if _, err := a.r.Run(ctx, nil, "ip", args...); err != nil {
			return res, fmt.Errorf("%w: default via %s: %w", ErrRoute, p.DefaultRoute.Gateway, err)
		}
		a.k.DefaultRoute = p.DefaultRoute
		res.DefaultRoute = true
		a.log.Info("default route set", "seq", seq, "link", p.DefaultRoute.Link, "gateway", p.DefaultRoute.Gateway)
	}

	// 5. conntrack entries of links that stopped being ready; 6. old rules
	anyActive := slices.ContainsFunc(p.Links, func(l LinkPlan) bool { return l.Active })
	var keep []Rule
	var gone []Rule
	for _, r := range a.k.Rules {
		if want[ruleKey(r)] {
			keep = append(keep, r)
		} else {
			gone = append(gone, r)
		}
	}
	if a.opts.KillStates && anyActive {
		for _, r := range gone {
			if r.Fwmark == 0 || r.From.IsValid() || slices.ContainsFunc(p.Rules, func(w Rule) bool { return w.Fwmark == r.Fwmark }) {
				continue
			}
			if err := a.killMark(ctx, p.Family, r.Fwmark); err != nil {
				return res, fmt.Errorf("%w: mark %s: %w", ErrKillStates, hexMark(r.Fwmark), err)
			}
			res.Killed = append(res.Killed, r.Fwmark)
			a.log.Info("conntrack entries deleted", "seq", seq, "mark", hexMark(r.Fwmark))
		}
	}
	for i, r := range gone {
		key := ruleKey(r)
		args := append([]string{fam, "rule", "del"}, strings.Fields(key)...)
		if _, err := a.r.Run(ctx, nil, "ip", args...); err != nil {
			a.k.Rules = append(keep, gone[i:]...)
			return res, fmt.Errorf("%w: %s: %w", ErrRule, key, err)
		}
		res.RulesDeleted = append(res.RulesDeleted, key)
		a.log.Info("ip rule deleted", "seq", seq, "rule", key)
	}
	a.k.Rules = keep
	return res, nil
}

// killMark deletes the conntrack entries carrying mark. conntrack(8)
// exits 1 when there were none; that is no failure.
func (a *Applier) killMark(ctx context.Context, family int, mark uint32) error {
	f := "ipv4"
	if family == 6 {
		f = "ipv6"
	}
	_, err := a.r.Run(ctx, nil, "conntrack", "-D", "-f", f, "--mark", strconv.FormatUint(uint64(mark), 10))
	var ce *CmdError
	if errors.As(err, &ce) && strings.Contains(ce.Stderr, " 0 flow entries") {
		return nil
	}
	return err
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
	d.Result, err = a.apply(ctx, p, 0)
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
