package nftapply_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"gwstated/config"
	"gwstated/nftapply"
)

// recorder is a Runner that runs commands for real (in a namespace) and
// records every call; an `ip -batch -` is recorded as the ip commands of
// its lines (one kernel write each), and counted once in procs.
type recorder struct {
	inner nftapply.Runner
	mu    sync.Mutex
	calls []string
	procs []string
}

func (r *recorder) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	r.mu.Lock()
	call := name + " " + strings.Join(args, " ")
	r.procs = append(r.procs, call)
	if name == "ip" && slices.Contains(args, "-batch") {
		for _, line := range strings.Split(strings.TrimSpace(string(stdin)), "\n") {
			r.calls = append(r.calls, "ip "+args[0]+" "+line)
		}
	} else {
		r.calls = append(r.calls, call)
	}
	r.mu.Unlock()
	return r.inner.Run(ctx, stdin, name, args...)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls, r.procs = nil, nil
	return c
}

// takeProcs returns the processes run since the last take (and forgets the calls).
func (r *recorder) takeProcs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.procs
	r.calls, r.procs = nil, nil
	return p
}

// writes are the recorded calls that change the kernel.
func writes(calls []string) []string {
	var out []string
	for _, c := range calls {
		f := strings.Fields(c)
		switch {
		case f[0] == "nft" && slices.Contains(f, "-c"):
		case f[0] == "nft" && f[1] == "list":
		case f[0] == "ip" && slices.Contains(f, "show"):
		default:
			out = append(out, c)
		}
	}
	return out
}

// firewall makes a namespace shaped like the recipe's firewall: eth0 on
// the LAN, eth1 and eth2 on the uplinks (veth pairs whose peers stay in
// the namespace, up), addressed as the config's probe sources.
func firewall(t *testing.T, ipv6 bool) string {
	ns := newNetns(t)
	inNetns(t, ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	for _, l := range []struct{ dev, peer, v4, v6 string }{
		{"eth0", "lan0", "192.168.0.1/24", "2001:db8:100::1/64"},
		{"eth1", "isp1", "198.51.100.198/24", "2001:db8:1::11/64"},
		{"eth2", "isp2", "203.0.113.198/24", "2001:db8:2::11/64"},
	} {
		mustRun(t, "ip", "-n", ns, "link", "add", l.dev, "type", "veth", "peer", "name", l.peer)
		mustRun(t, "ip", "-n", ns, "link", "set", l.dev, "up")
		mustRun(t, "ip", "-n", ns, "link", "set", l.peer, "up")
		if ipv6 {
			mustRun(t, "ip", "-n", ns, "-6", "addr", "add", l.v6, "dev", l.dev, "nodad")
		} else {
			mustRun(t, "ip", "-n", ns, "addr", "add", l.v4, "dev", l.dev)
		}
	}
	return ns
}

// assertKernel reads the kernel back and compares it with p.
func assertKernel(t *testing.T, ctx context.Context, ns string, cfg *config.Config, p nftapply.Plan) nftapply.Kernel {
	t.Helper()
	first, last := cfg.NFT.RulePriorities(len(cfg.Links))
	k, err := nftapply.ReadKernel(ctx, nftapply.ExecRunner{Netns: ns}, p, first, last)
	if err != nil {
		t.Fatal(err)
	}
	if k.Table != p.Table {
		t.Errorf("kernel table differs:\n--- want\n%s--- got\n%s", p.Table, k.Table)
	}
	for _, rt := range p.Routes {
		if got := k.Routes[rt.Table]; got.Gateway != rt.Gateway || got.Dev != rt.Dev || got.Table != rt.Table {
			t.Errorf("table %d holds %v, want %v", rt.Table, k.Routes[rt.Table], rt)
		}
	}
	var got, want []string
	for _, r := range k.Rules {
		got = append(got, r.String())
	}
	for _, r := range p.Rules {
		want = append(want, nftapply.Rule{Priority: r.Priority, Fwmark: r.Fwmark, From: r.From, Table: r.Table, SuppressMain: r.SuppressMain}.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ip rules in gwstated's range:\n got %q\nwant %q", got, want)
	}
	if !p.DefaultRoute.IsZero() && k.DefaultRoute.String() != p.DefaultRoute.String() {
		t.Errorf("main default route %v, want %v", k.DefaultRoute, p.DefaultRoute)
	}
	if len(k.Foreign) > 0 {
		t.Errorf("foreign rules in gwstated's range: %v", k.Foreign)
	}
	return k
}

// TestApplyRecipeStates walks the recipe's states in a namespace and
// reads the kernel back after each transition; an unchanged verdict runs
// no command at all.
func TestApplyRecipeStates(t *testing.T) {
	for _, c := range []struct {
		name string
		yaml string
		ipv6 bool
	}{{"ipv4", yamlRecipe, false}, {"ipv6", yamlIPv6, true}} {
		t.Run(c.name, func(t *testing.T) {
			ns := firewall(t, c.ipv6)
			ctx := t.Context()
			cfg := parseConfig(t, c.yaml)
			rec := &recorder{inner: nftapply.ExecRunner{Netns: ns}}
			a := nftapply.NewApplier(rec, nftapply.OptionsFromConfig(cfg, nil))
			both := []string{"isp1", "isp2"}
			steps := []struct {
				name       string
				allDown    string
				up, active []string
			}{
				{"allworking", "", both, both},
				{"noisp1", "", []string{"isp2"}, []string{"isp2"}},
				{"allworking", "", both, both},
				{"noisp2", "", []string{"isp1"}, []string{"isp1"}},
				{"alldown-keep", "keep", nil, []string{"isp1"}},
				{"alldown-none", "none", nil, nil},
				{"alldown-all", "all", nil, both},
				{"allworking", "", both, both},
			}
			prev := ""
			for i, s := range steps {
				p, err := nftapply.Render(cfg, verdict(cfg, s.up, s.active))
				if err != nil {
					t.Fatal(err)
				}
				res, err := a.Apply(ctx, p, uint64(i+1))
				if err != nil {
					t.Fatalf("step %d %s: %v", i, s.name, err)
				}
				calls := rec.take()
				if changed := p.Hash != prev; changed != (res.Writes() > 0) {
					t.Errorf("step %d %s: plan changed %v but %d kernel writes", i, s.name, changed, res.Writes())
				}
				prev = p.Hash
				if got := len(writes(calls)); got != res.Writes() {
					t.Errorf("step %d %s: Result counts %d writes, the runner saw %d: %q", i, s.name, res.Writes(), got, calls)
				}
				assertKernel(t, ctx, ns, cfg, p)
				// The same plan again: zero commands.
				res, err = a.Apply(ctx, p, uint64(i+1))
				if err != nil {
					t.Fatal(err)
				}
				if calls := rec.take(); len(calls) != 0 || res.Writes() != 0 {
					t.Errorf("step %d %s: unchanged verdict ran %q", i, s.name, calls)
				}
				t.Logf("%s: %d writes", s.name, len(writes(calls)))
			}
		})
	}
}

// TestApplyKillsDeadLinkStates: entries with isp2's mark are deleted when
// isp2 fails (isp1 still carries), entries with isp1's mark stay; with
// every link down nothing is deleted. With either StateKiller.
func TestApplyKillsDeadLinkStates(t *testing.T) {
	for _, kk := range killerKinds {
		t.Run(kk.name, func(t *testing.T) { testApplyKillsDeadLinkStates(t, kk.open, kk.procs) })
	}
}

func testApplyKillsDeadLinkStates(t *testing.T, open func(*testing.T, string) nftapply.StateKiller, procs int) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	opts := nftapply.OptionsFromConfig(cfg, nil)
	opts.Killer = open(t, ns)
	a := nftapply.NewApplier(nftapply.ExecRunner{Netns: ns}, opts)
	apply := func(up, active []string) nftapply.Result {
		t.Helper()
		p, err := nftapply.Render(cfg, verdict(cfg, up, active))
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Apply(ctx, p, 1)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	entry := func(sport, mark string) {
		inNetns(t, ns, "conntrack", "-I", "-p", "udp", "-s", "192.168.0.10", "-d", "192.0.2.53",
			"--sport", sport, "--dport", "53", "--timeout", "300", "--mark", mark)
	}
	count := func(mark string) int {
		out, _ := nftapply.ExecRunner{Netns: ns}.Run(ctx, nil, "conntrack", "-L", "--mark", mark)
		return strings.Count(string(out), "udp")
	}
	both := []string{"isp1", "isp2"}
	apply(both, both)
	entry("1000", "256")
	entry("1001", "257")
	res := apply([]string{"isp1"}, []string{"isp1"})
	if !slices.Equal(res.Killed, []uint32{0x101}) {
		t.Errorf("killed %v, want [0x101]", res.Killed)
	}
	if res.Commands != 2+procs {
		t.Errorf("isp2 down ran %d processes, want nft -f, ip -batch and %d for the kill", res.Commands, procs)
	}
	if n := count("257"); n != 0 {
		t.Errorf("%d entries with isp2's mark left", n)
	}
	if n := count("256"); n != 1 {
		t.Errorf("%d entries with isp1's mark, want 1 (a link that stays up is never disturbed)", n)
	}
	// All down (all_down: none): no other link carries, nothing deleted.
	cfg.AllDown = "none"
	res = apply(nil, nil)
	if len(res.Killed) != 0 || count("256") != 1 {
		t.Errorf("all down: killed %v, isp1 entries %d; want none killed", res.Killed, count("256"))
	}
}

// TestRepairDrift changes gwstated's state by hand and adds foreign
// state; Repair finds and fixes the first, leaves the second.
func TestRepairDrift(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	run := nftapply.ExecRunner{Netns: ns}
	a := nftapply.NewApplier(run, nftapply.OptionsFromConfig(cfg, nil))
	both := []string{"isp1", "isp2"}
	p, err := nftapply.Render(cfg, verdict(cfg, both, both))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, p, 1); err != nil {
		t.Fatal(err)
	}
	// Nothing changed: Repair finds nothing and writes nothing.
	d, err := a.Repair(ctx)
	if err != nil || len(d.Found) > 0 || d.Result.Writes() > 0 {
		t.Fatalf("repair of an intact kernel: %v, found %q, %d writes", err, d.Found, d.Result.Writes())
	}
	// Foreign state: another table, a rule at another priority, a route
	// in another table.
	inNetns(t, ns, "nft", "add", "table", "inet", "foreign")
	inNetns(t, ns, "nft", "add", "chain", "inet", "foreign", "c")
	inNetns(t, ns, "nft", "add", "rule", "inet", "foreign", "c", "counter")
	mustRun(t, "ip", "-n", ns, "rule", "add", "priority", "500", "fwmark", "0x7", "lookup", "77")
	mustRun(t, "ip", "-n", ns, "route", "add", "default", "via", "198.51.100.7", "dev", "eth1", "table", "77")
	foreign := func() string {
		return inNetns(t, ns, "nft", "list", "table", "inet", "foreign") +
			mustRun(t, "ip", "-n", ns, "rule", "show", "priority", "500") +
			mustRun(t, "ip", "-n", ns, "route", "show", "table", "77")
	}
	before := foreign()

	for _, c := range []struct {
		name  string
		drift func()
	}{
		{"rule deleted", func() { mustRun(t, "ip", "-n", ns, "rule", "del", "priority", "102") }},
		{"rule added to the chain", func() { inNetns(t, ns, "nft", "add", "rule", "inet", "gwstated", "lan", "counter") }},
		{"table deleted", func() { inNetns(t, ns, "nft", "delete", "table", "inet", "gwstated") }},
		{"route changed", func() {
			mustRun(t, "ip", "-n", ns, "route", "replace", "default", "via", "198.51.100.50", "dev", "eth1", "table", "100")
		}},
		{"default route changed", func() {
			mustRun(t, "ip", "-n", ns, "route", "replace", "default", "via", "203.0.113.200", "dev", "eth2")
		}},
		{"extra rule in range", func() {
			mustRun(t, "ip", "-n", ns, "rule", "add", "priority", "103", "fwmark", "0x100", "lookup", "101")
		}},
	} {
		c.drift()
		d, err := a.Repair(ctx)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(d.Found) == 0 || d.Result.Writes() == 0 {
			t.Errorf("%s: not detected (found %q, %d writes)", c.name, d.Found, d.Result.Writes())
		}
		t.Logf("%s: found %q", c.name, d.Found)
		assertKernel(t, ctx, ns, cfg, p)
	}
	if after := foreign(); after != before {
		t.Errorf("foreign state changed:\n--- before\n%s--- after\n%s", before, after)
	}
}

// TestAdoptWithoutWrites: a new Applier (a restarted agent) finds its own
// table, routes and rules in place and writes nothing.
func TestAdoptWithoutWrites(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	p, err := nftapply.Render(cfg, verdict(cfg, []string{"isp2"}, []string{"isp2"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nftapply.NewApplier(nftapply.ExecRunner{Netns: ns}, kernelOptions(t, cfg, ns)).Apply(ctx, p, 1); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{inner: nftapply.ExecRunner{Netns: ns}}
	res, err := nftapply.NewApplier(rec, nftapply.OptionsFromConfig(cfg, nil)).Apply(ctx, p, 1)
	if err != nil {
		t.Fatal(err)
	}
	if w := writes(rec.take()); len(w) != 0 || res.Writes() != 0 {
		t.Errorf("restart wrote %q", w)
	}
}

// TestApplyRefusesBadTable: a table nft refuses changes nothing.
func TestApplyRefusesBadTable(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	rec := &recorder{inner: nftapply.ExecRunner{Netns: ns}}
	a := nftapply.NewApplier(rec, nftapply.OptionsFromConfig(cfg, nil))
	p, err := nftapply.Render(cfg, verdict(cfg, []string{"isp1"}, []string{"isp1"}))
	if err != nil {
		t.Fatal(err)
	}
	p.Table = strings.Replace(p.Table, "masquerade", "masquerade to :99999", 1)
	_, err = a.Apply(ctx, p, 1)
	if !errors.Is(err, nftapply.ErrValidate) {
		t.Fatalf("want ErrValidate, got %v", err)
	}
	if w := writes(rec.take()); len(w) != 0 {
		t.Errorf("a refused table still wrote %q", w)
	}
	t.Logf("error an admin reads: %v", err)
}

// TestCheckPlanHostile: plans Render never makes are refused before any
// command runs.
func TestCheckPlanHostile(t *testing.T) {
	cfg := parseConfig(t, yamlRecipe)
	good, err := nftapply.Render(cfg, verdict(cfg, []string{"isp1"}, []string{"isp1"}))
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*nftapply.Plan){
		"table name":     func(p *nftapply.Plan) { p.TableName = "gw; flush ruleset" },
		"include":        func(p *nftapply.Plan) { p.Table += "include \"/etc/passwd\"\n" },
		"flush ruleset":  func(p *nftapply.Plan) { p.Table += "flush ruleset\n" },
		"second table":   func(p *nftapply.Plan) { p.Table += "table ip other {\n}\n" },
		"NUL":            func(p *nftapply.Plan) { p.Table = strings.Replace(p.Table, "eth0", "eth0\x00", 1) },
		"dev option":     func(p *nftapply.Plan) { p.Routes[0].Dev = "-force" },
		"dev newline":    func(p *nftapply.Plan) { p.DefaultRoute.Dev = "eth1\nx" },
		"rule priority0": func(p *nftapply.Plan) { p.Rules[0].Priority = 0 },
	} {
		p := good
		p.Routes = slices.Clone(good.Routes)
		p.Rules = slices.Clone(good.Rules)
		mutate(&p)
		rec := &recorder{inner: failRunner{}}
		_, err := nftapply.NewApplier(rec, nftapply.Options{}).Apply(t.Context(), p, 1)
		if !errors.Is(err, nftapply.ErrHostile) {
			t.Errorf("%s: want ErrHostile, got %v", name, err)
		}
		if c := rec.take(); len(c) > 0 {
			t.Errorf("%s: ran %q", name, c)
		}
	}
}

type failRunner struct{}

func (failRunner) Run(context.Context, []byte, string, ...string) ([]byte, error) {
	return nil, errors.New("must not run")
}
