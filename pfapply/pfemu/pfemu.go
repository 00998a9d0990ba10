// Package pfemu is a stateful emulator of OpenBSD's pfctl(8), route(8) and
// ifconfig(8) for the commands gwstated runs, for tests and the lab. It
// keeps anchors, their tables, pf states, default routes, CARP interfaces
// and interface-group demotion counters, and answers with the output,
// standard error and exit status the OpenBSD programs produce, taken from
// their source (see doc comments and pfapply/pfrule for the revisions):
//
//	pfctl -n -a A -f FILE      parse.y: refuse what pfctl refuses, load nothing
//	pfctl -a A -f FILE         replace the anchor's rules and its tables
//	pfctl -a A -sr             print_rule of every rule
//	pfctl -a A -t T -T show    print_addrx of every entry
//	pfctl -k label -k L        kill the states of rules labelled L
//	route [-T n] -n change|add [-inet6] default GW
//	ifconfig carpN             carp_status
//	ifconfig -g G              printgroupattribs
//	ifconfig -g G [-]carpdemote [N]
//
// An Emu is an execrun.Runner (Run) over Exec; a failing command returns
// an *execrun.CmdError as ExecRunner does. It imports nothing of pfapply,
// so pfapply's own tests can use it.
package pfemu

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gwstated/internal/execrun"
	"gwstated/pfapply/pfrule"
)

// Result is what a command printed and how it exited.
type Result struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	Exit   int    `json:"exit"`
}

// Options configures an Emu.
type Options struct {
	Dialect pfrule.Dialect
	// Paths of the programs; Base names also match. Defaults /sbin/pfctl,
	// /sbin/route, /sbin/ifconfig.
	Pfctl, Route, Ifconfig string
	// Interfaces that exist (legacy route-to checks them); nil: any.
	Interfaces []string
	// Seed makes the automatic table identifiers reproducible.
	Seed uint64
	// NewError makes the error Run returns for a command that exits
	// non-zero; nil: an *execrun.CmdError as ExecRunner returns it.
	NewError func(name string, args []string, r Result) error
}

// State is one pf state, reduced to what gwstated looks at: the label of
// the rule that created it.
type State struct {
	Label string `json:"label"`
	Proto string `json:"proto,omitempty"`
	Src   string `json:"src,omitempty"`
	Dst   string `json:"dst,omitempty"`
}

// CARP is one carp(4) interface with a single virtual host.
type CARP struct {
	State   string `json:"state"` // INIT, BACKUP, MASTER
	Carpdev string `json:"carpdev"`
	VHID    int    `json:"vhid"`
	Advbase int    `json:"advbase"`
	Advskew int    `json:"advskew"`
}

// Call is one command run against the emulator.
type Call struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
	Exit int      `json:"exit"`
}

// Anchor is what pf holds for one anchor.
type Anchor struct {
	Text   string         `json:"text"` // the file last loaded
	Rules  []pfrule.Rule  `json:"rules"`
	Tables []pfrule.Table `json:"tables"`
	Loads  int            `json:"loads"`
}

// Snapshot is the whole emulated state (for a lab that runs the emulator as
// a program, saved between invocations).
type Snapshot struct {
	Anchors map[string]*Anchor    `json:"anchors"`
	Routes  map[string]netip.Addr `json:"routes"` // "<rtable>/<inet|inet6>" -> gateway
	States  []State               `json:"states"`
	CARP    map[string]*CARP      `json:"carp"`
	Groups  map[string]int        `json:"groups"` // interface group -> carp demote counter
	Calls   []Call                `json:"calls"`
	Seq     uint64                `json:"seq"` // runs of pfctl, for table identifiers
}

// Fault makes matching commands fail: Times of them (0: all) get Result
// instead of being run.
type Fault struct {
	Match  func(name string, args []string) bool
	Times  int
	Result Result
	used   int
}

// Emu is the emulator. Its methods are safe for concurrent use.
type Emu struct {
	o      Options
	mu     sync.Mutex
	s      Snapshot
	faults []*Fault
}

// New returns an emulator with nothing loaded, no default route and no
// CARP interfaces.
func New(o Options) *Emu {
	if o.Pfctl == "" {
		o.Pfctl = "/sbin/pfctl"
	}
	if o.Route == "" {
		o.Route = "/sbin/route"
	}
	if o.Ifconfig == "" {
		o.Ifconfig = "/sbin/ifconfig"
	}
	return &Emu{o: o, s: Snapshot{Anchors: map[string]*Anchor{}, Routes: map[string]netip.Addr{},
		CARP: map[string]*CARP{}, Groups: map[string]int{}}}
}

// Snapshot returns a deep copy of the state.
func (e *Emu) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	return cloneSnapshot(e.s)
}

// Restore replaces the state.
func (e *Emu) Restore(s Snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.s = cloneSnapshot(s)
	if e.s.Anchors == nil {
		e.s.Anchors = map[string]*Anchor{}
	}
	if e.s.Routes == nil {
		e.s.Routes = map[string]netip.Addr{}
	}
	if e.s.CARP == nil {
		e.s.CARP = map[string]*CARP{}
	}
	if e.s.Groups == nil {
		e.s.Groups = map[string]int{}
	}
}

func cloneSnapshot(s Snapshot) Snapshot {
	c := Snapshot{Anchors: map[string]*Anchor{}, Routes: map[string]netip.Addr{}, CARP: map[string]*CARP{},
		Groups: map[string]int{}, States: slices.Clone(s.States), Calls: slices.Clone(s.Calls), Seq: s.Seq}
	for k, v := range s.Anchors {
		a := *v
		a.Rules = slices.Clone(v.Rules)
		a.Tables = slices.Clone(v.Tables)
		c.Anchors[k] = &a
	}
	for k, v := range s.Routes {
		c.Routes[k] = v
	}
	for k, v := range s.CARP {
		cp := *v
		c.CARP[k] = &cp
	}
	for k, v := range s.Groups {
		c.Groups[k] = v
	}
	return c
}

// Inject adds a fault.
func (e *Emu) Inject(f *Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, f)
}

// TakeCalls returns the commands run since the last TakeCalls.
func (e *Emu) TakeCalls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.s.Calls
	e.s.Calls = nil
	return c
}

// AddStates adds pf states.
func (e *Emu) AddStates(st ...State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.s.States = append(e.s.States, st...)
}

// StatesByLabel counts the states of each label.
func (e *Emu) StatesByLabel() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[string]int{}
	for _, s := range e.s.States {
		m[s.Label]++
	}
	return m
}

// SetDefaultRoute sets (or with a zero gw removes) the default route of
// rtable for gw's family, as if by hand.
func (e *Emu) SetDefaultRoute(rtable int, v6 bool, gw netip.Addr) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := routeKey(rtable, v6)
	if gw.IsValid() {
		e.s.Routes[k] = gw
	} else {
		delete(e.s.Routes, k)
	}
}

// DefaultRoute returns the default route of rtable.
func (e *Emu) DefaultRoute(rtable int, v6 bool) netip.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.s.Routes[routeKey(rtable, v6)]
}

func routeKey(rtable int, v6 bool) string {
	if v6 {
		return strconv.Itoa(rtable) + "/inet6"
	}
	return strconv.Itoa(rtable) + "/inet"
}

// SetCARP configures a carp interface; it joins the "carp" group.
func (e *Emu) SetCARP(name string, c CARP) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cp := c
	e.s.CARP[name] = &cp
	if _, ok := e.s.Groups["carp"]; !ok {
		e.s.Groups["carp"] = 0
	}
}

// SetGroup creates an interface group with a demote counter.
func (e *Emu) SetGroup(name string, demote int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.s.Groups[name] = demote
}

// Demotion returns a group's carp demote counter and whether it exists.
func (e *Emu) Demotion(group string) (int, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.s.Groups[group]
	return n, ok
}

// Anchor returns a copy of what pf holds for an anchor (nil: nothing
// loaded).
func (e *Emu) Anchor(name string) *Anchor {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, ok := e.s.Anchors[name]
	if !ok {
		return nil
	}
	c := *a
	c.Rules = slices.Clone(a.Rules)
	c.Tables = slices.Clone(a.Tables)
	return &c
}

// ReplaceAnchorText loads text into an anchor as an operator would with
// pfctl -a name -f, bypassing Runner bookkeeping; for drift tests.
func (e *Emu) ReplaceAnchorText(name, text string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.load(name, text, "stdin")
	return err
}

// Run implements the Runner of pfapply: the command's standard output, and
// for a non-zero exit an error from Options.NewError.
func (e *Emu) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := e.Exec(name, args)
	if r.Exit == 0 {
		return []byte(r.Stdout), nil
	}
	if e.o.NewError != nil {
		return []byte(r.Stdout), e.o.NewError(name, slices.Clone(args), r)
	}
	return []byte(r.Stdout), &execrun.CmdError{Cmd: name, Args: slices.Clone(args), Exit: r.Exit,
		Stdout: strings.TrimSpace(r.Stdout), Stderr: strings.TrimSpace(r.Stderr),
		Err: fmt.Errorf("exit status %d", r.Exit)}
}

func is(name, path string) bool {
	return name == path || name == baseName(path)
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Exec runs one command.
func (e *Emu) Exec(name string, args []string) Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r Result
	faulted := false
	for _, f := range e.faults {
		if (f.Times == 0 || f.used < f.Times) && f.Match(name, args) {
			f.used++
			r, faulted = f.Result, true
			break
		}
	}
	if !faulted {
		switch {
		case is(name, e.o.Pfctl):
			r = e.pfctl(args)
		case is(name, e.o.Route):
			r = e.route(args)
		case is(name, e.o.Ifconfig):
			r = e.ifconfig(args)
		default:
			r = Result{Stderr: name + ": not a program the emulator knows\n", Exit: 127}
		}
	}
	e.s.Calls = append(e.s.Calls, Call{Name: name, Args: slices.Clone(args), Exit: r.Exit})
	return r
}

// ErrUnsupported marks a command line the emulator does not model.
var ErrUnsupported = errors.New("not modelled by the emulator")

func unsupported(prog string, args []string) Result {
	return Result{Stderr: fmt.Sprintf("%s: %s: %v\n", prog, strings.Join(args, " "), ErrUnsupported), Exit: 1}
}

// getopt splits args like getopt(3) with the option letters in spec ("a:"
// takes an argument). It returns the options in order and the operands.
func getopt(args []string, spec string) (opts [][2]string, rest []string, err error) {
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			k := strings.IndexByte(spec, a[j])
			if k < 0 {
				return nil, nil, fmt.Errorf("unknown option -- %c", a[j])
			}
			if k+1 < len(spec) && spec[k+1] == ':' {
				v := a[j+1:]
				if v == "" {
					i++
					if i >= len(args) {
						return nil, nil, fmt.Errorf("option requires an argument -- %c", a[j])
					}
					v = args[i]
				}
				opts = append(opts, [2]string{string(a[j]), v})
				break
			}
			opts = append(opts, [2]string{string(a[j]), ""})
		}
	}
	return opts, args[i:], nil
}

// pfctl emulates the pfctl(8) command lines of pfctl.c 1.397 that gwstated
// uses.
func (e *Emu) pfctl(args []string) Result {
	opts, rest, err := getopt(args, "a:f:k:s:t:T:nq")
	if err != nil || len(rest) > 0 {
		return unsupported("pfctl", args)
	}
	var anchor, file, show, table, tcmd string
	var kills []string
	noaction := false
	for _, o := range opts {
		switch o[0] {
		case "a":
			anchor = o[1]
		case "f":
			file = o[1]
		case "k":
			kills = append(kills, o[1])
		case "s":
			show = o[1]
		case "t":
			table = o[1]
		case "T":
			tcmd = o[1]
		case "n":
			noaction = true
		}
	}
	switch {
	case file != "" && anchor != "" && show == "" && len(kills) == 0 && table == "":
		b, err := os.ReadFile(file)
		if err != nil {
			// pfctl_rules -> parse_config -> pushfile: warn("%s: %s").
			return Result{Stderr: fmt.Sprintf("pfctl: pushfile: %s: %v\npfctl: cannot open the main config file!: %v\npfctl: Syntax error in config file: pf rules not loaded\n", file, errors.Unwrap(err), errors.Unwrap(err)), Exit: 1}
		}
		if noaction {
			if _, err := e.compile(string(b), file); err != nil {
				return loadError(err)
			}
			return Result{}
		}
		if _, err := e.load(anchor, string(b), file); err != nil {
			return loadError(err)
		}
		return Result{}
	case anchor != "" && (show == "r" || show == "rules") && file == "" && table == "":
		a := e.s.Anchors[anchor]
		if a == nil {
			// An anchor that pf.conf calls exists, empty, until loaded.
			return Result{}
		}
		rs := &pfrule.Ruleset{Rules: a.Rules, Tables: a.Tables}
		return Result{Stdout: pfrule.PrintRules(rs)}
	case table != "" && tcmd == "show" && file == "" && show == "":
		a := e.s.Anchors[anchor]
		var t *pfrule.Table
		if a != nil {
			rs := &pfrule.Ruleset{Tables: a.Tables}
			t = rs.Table(table)
		}
		if t == nil {
			// pfctl_table.c radix_perror for ESRCH.
			return Result{Stderr: "pfctl: Table does not exist.\n", Exit: 1}
		}
		return Result{Stdout: pfrule.PrintTableEntries(t)}
	case len(kills) == 2 && kills[0] == "label" && anchor == "" && file == "" && show == "":
		// pfctl_label_kill_states: the label must fit psk_label (64).
		if len(kills[1]) >= 64 {
			return Result{Stderr: "pfctl: label too long: " + kills[1] + "\n", Exit: 1}
		}
		n := 0
		kept := e.s.States[:0]
		for _, s := range e.s.States {
			if s.Label == kills[1] {
				n++
				continue
			}
			kept = append(kept, s)
		}
		e.s.States = kept
		return Result{Stderr: fmt.Sprintf("killed %d states\n", n)}
	}
	return unsupported("pfctl", args)
}

func loadError(err error) Result {
	var pe *pfrule.Error
	msg := err.Error()
	if errors.As(err, &pe) {
		msg = strings.Join(pe.Msgs, "\n")
	}
	return Result{Stderr: msg + "\npfctl: Syntax error in config file: pf rules not loaded\n", Exit: 1}
}

func (e *Emu) compile(text, file string) (*pfrule.Ruleset, error) {
	e.s.Seq++
	rng := rand.New(rand.NewPCG(e.o.Seed, e.s.Seq))
	return pfrule.Compile(text, pfrule.Options{Dialect: e.o.Dialect, TableID: rng.Uint32(), Interfaces: e.o.Interfaces, File: file})
}

// load replaces an anchor's rules and tables in one transaction
// (pfctl_ruleset_trans: PF_TRANS_RULESET and PF_TRANS_TABLE for the path).
func (e *Emu) load(anchor, text, file string) (*pfrule.Ruleset, error) {
	rs, err := e.compile(text, file)
	if err != nil {
		return nil, err
	}
	a := e.s.Anchors[anchor]
	if a == nil {
		a = &Anchor{}
		e.s.Anchors[anchor] = a
	}
	a.Text, a.Rules, a.Tables = text, rs.Rules, rs.Tables
	a.Loads++
	return rs, nil
}

// route emulates route(8) newroute of route.c 1.267 for "change" and "add"
// of the default route: it prints "<cmd> net default: gateway <gw>" and,
// on failure, ": <error>" on standard output ("not in table" for ESRCH)
// and exits 1.
func (e *Emu) route(args []string) Result {
	rtable := 0
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "-") && len(args[i]) > 1; i++ {
		switch args[i] {
		case "-n", "-q":
		case "-T":
			if i+1 >= len(args) {
				return unsupported("route", args)
			}
			i++
			n, err := strconv.Atoi(args[i])
			if err != nil || n < 0 {
				return Result{Stderr: "route: rtable " + args[i] + ": invalid\n", Exit: 1}
			}
			rtable = n
		default:
			return unsupported("route", args)
		}
	}
	rest := args[i:]
	if len(rest) < 1 || rest[0] != "change" && rest[0] != "add" {
		return unsupported("route", args)
	}
	cmd := rest[0]
	rest = rest[1:]
	v6 := false
	if len(rest) > 0 && (rest[0] == "-inet6" || rest[0] == "-inet") {
		v6 = rest[0] == "-inet6"
		rest = rest[1:]
	}
	if len(rest) != 2 || rest[0] != "default" {
		return unsupported("route", args)
	}
	gw, err := netip.ParseAddr(rest[1])
	if err != nil || gw.Is6() != v6 {
		return Result{Stderr: "route: " + rest[1] + ": bad address\n", Exit: 1}
	}
	k := routeKey(rtable, v6)
	head := fmt.Sprintf("%s net default: gateway %s", cmd, rest[1])
	_, have := e.s.Routes[k]
	switch {
	case cmd == "change" && !have:
		return Result{Stdout: head + ": not in table\n", Exit: 1}
	case cmd == "add" && have:
		return Result{Stdout: head + ": File exists\n", Exit: 1}
	}
	e.s.Routes[k] = gw
	return Result{Stdout: head + "\n"}
}

// ifconfig emulates the ifconfig(8) command lines of gwstated: carp_status
// (ifconfig.c 1.232; the single-vhid line), printgroupattribs and
// setgroupattribs (ifconfig.c 1.476: carpdemote takes 0-128, "invalid carp
// demotion"), and the kernel's bound on the group counter (if.c 1.741
// if_setgroupattribs: EINVAL unless 0 <= counter + demote <= 0xff).
func (e *Emu) ifconfig(args []string) Result {
	if len(args) == 1 && !strings.HasPrefix(args[0], "-") {
		c, ok := e.s.CARP[args[0]]
		if !ok {
			return Result{Stderr: args[0] + ": no such interface\n", Exit: 1}
		}
		// Only carp_status's line is emulated, not the rest of printif.
		return Result{Stdout: fmt.Sprintf("\tcarp: %s carpdev %s vhid %d advbase %d advskew %d\n",
			c.State, c.Carpdev, c.VHID, c.Advbase, c.Advskew)}
	}
	if len(args) < 2 || args[0] != "-g" {
		return unsupported("ifconfig", args)
	}
	g := args[1]
	cur, exists := e.s.Groups[g]
	if len(args) == 2 {
		if !exists {
			return Result{Stderr: "ifconfig: " + g + ": SIOCGIFGATTR: No such file or directory\n", Exit: 1}
		}
		return Result{Stdout: fmt.Sprintf("%s: carp demote count %d\n", g, cur)}
	}
	op := args[2]
	if op != "carpdemote" && op != "-carpdemote" || len(args) > 4 {
		return unsupported("ifconfig", args)
	}
	n := 1
	if len(args) == 4 {
		v, errstr := strtonum(args[3], 0, 128)
		if errstr != "" {
			return Result{Stderr: fmt.Sprintf("ifconfig: %s: invalid carp demotion: %s\n", g, errstr), Exit: 1}
		}
		n = v
	}
	if op == "-carpdemote" {
		n = -n
	}
	if !exists {
		return Result{Stderr: "ifconfig: " + g + ": SIOCSIFGATTR: No such file or directory\n", Exit: 1}
	}
	if cur+n > 0xff || cur+n < 0 {
		return Result{Stderr: "ifconfig: " + g + ": SIOCSIFGATTR: Invalid argument\n", Exit: 1}
	}
	e.s.Groups[g] = cur + n
	return Result{}
}

// strtonum is strtonum(3): its error strings are "invalid", "too small"
// and "too large".
func strtonum(s string, lo, hi int64) (int, string) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			if strings.HasPrefix(s, "-") {
				return 0, "too small"
			}
			return 0, "too large"
		}
		return 0, "invalid"
	}
	switch {
	case v < lo:
		return 0, "too small"
	case v > hi:
		return 0, "too large"
	}
	return int(v), ""
}
