package pfapply

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gwstated/config"
	"gwstated/internal/execrun"
	"gwstated/internal/execrun/exectest"
	"gwstated/linkstate"
	"gwstated/pfapply/pfrule"
)

// applyConfig is the recipe's network (links isp1 fxp0 198.51.100.100, isp2
// fxp1 203.0.113.200, lan dc0, https sticky) with n links; links past the
// second are ispN on emN with gateway 10.0.N.1. It starts from
// config.Default() (pf: pfctl backend, openbsd syntax, kill_states, the
// recipe's anchor names) and fills the links as Parse does.
func applyConfig(n int) *config.Config {
	cfg := config.Default()
	cfg.LAN = config.LAN{Interface: "dc0", Network: netip.MustParsePrefix("192.168.0.0/24")}
	cfg.Sticky = []config.Sticky{{Name: "https", Proto: "tcp", Ports: []int{443}}}
	for i := 1; i <= n; i++ {
		l := config.Link{Name: fmt.Sprintf("isp%d", i), Interface: fmt.Sprintf("em%d", i), Gateway: netip.AddrFrom4([4]byte{10, 0, byte(i), 1})}
		switch i {
		case 1:
			l.Interface, l.Gateway = "fxp0", netip.MustParseAddr("198.51.100.100")
		case 2:
			l.Interface, l.Gateway = "fxp1", netip.MustParseAddr("203.0.113.200")
		}
		cfg.Links = append(cfg.Links, l)
	}
	cfg.ApplyDefaults()
	return &cfg
}

// rulesetUp renders the ruleset with the given links up; with none up, the
// all_down: none ruleset (every anchor empty, no default route).
func rulesetUp(t testing.TB, cfg *config.Config, up ...string) Ruleset {
	t.Helper()
	v := linkstate.Verdict{Links: map[string]linkstate.LinkVerdict{}}
	for _, l := range cfg.Links {
		st := linkstate.Down
		if slices.Contains(up, l.Name) {
			st = linkstate.Up
			v.Active = append(v.Active, l.Name)
		}
		v.Links[l.Name] = linkstate.LinkVerdict{State: st, Observed: st}
	}
	v.AllDown = len(up) == 0
	rs, err := Render(cfg, v)
	if err != nil {
		t.Fatalf("Render(up=%v): %v", up, err)
	}
	return rs
}

// pfctlSteps builds expected command lines for the pfctl backend.
type pfctlSteps struct{ dir string }

func (s pfctlSteps) check(anchors ...string) [][]string {
	var out [][]string
	for _, a := range anchors {
		out = append(out, []string{"/sbin/pfctl", "-n", "-a", a, "-f", filepath.Join(s.dir, a+".pending")})
	}
	return out
}

func (s pfctlSteps) load(anchors ...string) [][]string {
	var out [][]string
	for _, a := range anchors {
		out = append(out, []string{"/sbin/pfctl", "-a", a, "-f", filepath.Join(s.dir, a+".pending")})
	}
	return out
}

func routeChange(gw string) []string { return []string{"/sbin/route", "-n", "change", "default", gw} }
func routeAdd(gw string) []string    { return []string{"/sbin/route", "-n", "add", "default", gw} }
func kill(label string) []string     { return []string{"/sbin/pfctl", "-k", "label", "-k", label} }

func seq(parts ...[][]string) [][]string {
	var out [][]string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(c []string) [][]string { return [][]string{c} }

// newPfctlApplier is an Applier over the pfctl backend over the OpenBSD
// emulator (pfapply/pfemu, with a default route as on any gateway), through
// a recording runner that can script failures.
func newPfctlApplier(t *testing.T, cfg *config.Config) (*Applier, *exectest.Runner, pfctlSteps) {
	t.Helper()
	emu := newEmu(dialectOf(cfg))
	emu.SetDefaultRoute(0, cfg.LAN.Network.Addr().Is6(), cfg.Links[0].Gateway)
	fr := &exectest.Runner{Fallback: emu}
	dir := t.TempDir()
	b, err := NewPfctl(fr, PfctlOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return NewApplier(b, OptionsFromConfig(cfg, nil)), fr, pfctlSteps{dir: dir}
}

// TestRecipeTransitions drives the ifstated recipe's states through the
// pfctl backend and asserts the exact commands of each transition:
// allworking → noisp1 → alldown (all_down: none) → noisp2 → allworking.
func TestRecipeTransitions(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(2)
	ap, fr, s := newPfctlApplier(t, cfg)
	const gw1, gw2 = "198.51.100.100", "203.0.113.200"

	steps := []struct {
		name   string
		up     []string
		want   [][]string
		killed []string
	}{{
		name: "start: allworking, nothing known",
		up:   []string{"isp1", "isp2"},
		want: seq(
			s.check("nat-isp1", "nat-isp2", "pass-isp1", "pass-isp2", "applications", "loadbalance"),
			s.load("nat-isp1", "nat-isp2", "pass-isp1", "pass-isp2", "applications", "loadbalance"),
			one(routeChange(gw1))),
	}, {
		// isp1 leaves the balancing anchors (and https moves to isp2)
		// before its nat and pass anchors are emptied; then its states go.
		name: "allworking → noisp1",
		up:   []string{"isp2"},
		want: seq(
			s.check("applications", "loadbalance", "nat-isp1", "pass-isp1"),
			s.load("applications", "loadbalance", "nat-isp1", "pass-isp1"),
			one(routeChange(gw2)),
			one(kill("gwstated:isp1")), one(kill("gwstated:https"))),
		killed: []string{"gwstated:isp1", "gwstated:https"},
	}, {
		// all_down: none empties everything; the route stays, and no
		// state is killed: there is no other link to move to.
		name: "noisp1 → alldown",
		up:   nil,
		want: seq(
			s.check("applications", "loadbalance", "nat-isp2", "pass-isp2"),
			s.load("applications", "loadbalance", "nat-isp2", "pass-isp2")),
	}, {
		// isp1 returns: its nat and pass anchors first, then balancing.
		name: "alldown → noisp2",
		up:   []string{"isp1"},
		want: seq(
			s.check("nat-isp1", "pass-isp1", "applications", "loadbalance"),
			s.load("nat-isp1", "pass-isp1", "applications", "loadbalance"),
			one(routeChange(gw1))),
	}, {
		// isp2 returns; https stays on isp1, the route stays on isp1.
		name: "noisp2 → allworking",
		up:   []string{"isp1", "isp2"},
		want: seq(
			s.check("nat-isp2", "pass-isp2", "loadbalance"),
			s.load("nat-isp2", "pass-isp2", "loadbalance")),
	}, {
		name: "allworking again: nothing to do",
		up:   []string{"isp1", "isp2"},
		want: nil,
	}}
	for i, st := range steps {
		rs := rulesetUp(t, cfg, st.up...)
		res, err := ap.Apply(ctx, rs, uint64(i+1))
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		calls, files := fr.Take()
		exectest.AssertCalls(t, st.name, calls, st.want)
		if res.Ops() != len(st.want) {
			t.Errorf("%s: Result.Ops() = %d, want %d (%+v)", st.name, res.Ops(), len(st.want), res)
		}
		if !slices.Equal(res.Killed, st.killed) {
			t.Errorf("%s: killed %q, want %q", st.name, res.Killed, st.killed)
		}
		// Every pfctl -f read exactly the rendered text of its anchor.
		for ci, c := range calls {
			if c[0] != "/sbin/pfctl" || !slices.Contains(c, "-f") {
				continue
			}
			a := c[slices.Index(c, "-a")+1]
			if want := anchorText(t, rs, a); files[ci] != want {
				t.Errorf("%s: call %q read %q, want %q", st.name, strings.Join(c, " "), files[ci], want)
			}
		}
		if !ap.Holds(rs) {
			t.Errorf("%s: Applier does not hold the ruleset it applied", st.name)
		}
	}
}

func anchorText(t *testing.T, rs Ruleset, name string) string {
	t.Helper()
	for _, a := range rs.Anchors {
		if a.Name == name {
			return a.Rules
		}
	}
	t.Fatalf("no anchor %q in ruleset", name)
	return ""
}

// TestThreeLinks covers a simultaneous return and failure: the returning
// link's anchors go first, the failing link's last, and only the failing
// link's states are killed.
func TestThreeLinks(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(3)
	ap, fr, s := newPfctlApplier(t, cfg)
	cases := []struct {
		name string
		up   []string
		want [][]string
	}{{
		name: "start: isp2 and isp3 up",
		up:   []string{"isp2", "isp3"},
		want: seq(
			s.check("nat-isp2", "nat-isp3", "pass-isp2", "pass-isp3", "applications", "loadbalance", "nat-isp1", "pass-isp1"),
			s.load("nat-isp2", "nat-isp3", "pass-isp2", "pass-isp3", "applications", "loadbalance", "nat-isp1", "pass-isp1"),
			one(routeChange("203.0.113.200"))),
	}, {
		name: "isp1 returns while isp3 fails",
		up:   []string{"isp1", "isp2"},
		want: seq(
			s.check("nat-isp1", "pass-isp1", "applications", "loadbalance", "nat-isp3", "pass-isp3"),
			s.load("nat-isp1", "pass-isp1", "applications", "loadbalance", "nat-isp3", "pass-isp3"),
			one(routeChange("198.51.100.100")),
			one(kill("gwstated:isp3"))),
	}, {
		name: "isp2 fails; https stays on isp1",
		up:   []string{"isp1"},
		want: seq(
			s.check("loadbalance", "nat-isp2", "pass-isp2"),
			s.load("loadbalance", "nat-isp2", "pass-isp2"),
			one(kill("gwstated:isp2"))),
	}, {
		name: "all three up",
		up:   []string{"isp1", "isp2", "isp3"},
		want: seq(
			s.check("nat-isp2", "nat-isp3", "pass-isp2", "pass-isp3", "loadbalance"),
			s.load("nat-isp2", "nat-isp3", "pass-isp2", "pass-isp3", "loadbalance")),
	}}
	for i, c := range cases {
		if _, err := ap.Apply(ctx, rulesetUp(t, cfg, c.up...), uint64(i+1)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		calls, _ := fr.Take()
		exectest.AssertCalls(t, c.name, calls, c.want)
	}
}

// TestValidationFailureLoadsNothing: one anchor fails pfctl -n; every
// changed anchor is still checked (all errors reported), nothing is
// loaded, and the next Apply loads everything.
func TestValidationFailureLoadsNothing(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(2)
	ap, fr, s := newPfctlApplier(t, cfg)
	rs := rulesetUp(t, cfg, "isp1", "isp2")
	bad := fr.On(exectest.HasArgs("-n", "-a", "loadbalance"), "", exectest.CmdErr(1, "", "/x/loadbalance.pending:2: syntax error"))
	bad.Times = 1

	_, err := ap.Apply(ctx, rs, 1)
	if !errors.Is(err, ErrValidate) {
		t.Fatalf("Apply: %v, want ErrValidate", err)
	}
	if !strings.Contains(err.Error(), `anchor "loadbalance"`) || !strings.Contains(err.Error(), "syntax error") {
		t.Errorf("error does not say which anchor and why: %v", err)
	}
	calls, _ := fr.Take()
	all := []string{"nat-isp1", "nat-isp2", "pass-isp1", "pass-isp2", "applications", "loadbalance"}
	exectest.AssertCalls(t, "failed validation", calls, s.check(all...))
	if ap.Holds(rs) {
		t.Error("Holds after failed validation")
	}

	if _, err := ap.Apply(ctx, rs, 1); err != nil {
		t.Fatalf("retry: %v", err)
	}
	calls, _ = fr.Take()
	exectest.AssertCalls(t, "retry", calls, seq(s.check(all...), s.load(all...), one(routeChange("198.51.100.100"))))
}

// TestLoadFailureAndRetry: the 2nd load of allworking → noisp1 fails. The
// anchor before it stays loaded (applications: consistent, since isp2 is
// still in every anchor), the error names the anchor, and the retry
// loads only what is still missing, in order, then route and states.
func TestLoadFailureAndRetry(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(2)
	ap, fr, s := newPfctlApplier(t, cfg)
	if _, err := ap.Apply(ctx, rulesetUp(t, cfg, "isp1", "isp2"), 1); err != nil {
		t.Fatal(err)
	}
	fr.Take()

	noisp1 := rulesetUp(t, cfg, "isp2")
	fr.FailCall(6) // 4 checks, load applications, load loadbalance
	_, err := ap.Apply(ctx, noisp1, 2)
	if !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), `anchor "loadbalance" (2 of 4`) {
		t.Fatalf("Apply: %v, want ErrLoad naming loadbalance, 2 of 4", err)
	}
	var ce *execrun.CmdError
	if !errors.As(err, &ce) || ce.Exit != 1 {
		t.Errorf("error does not carry the command's failure: %v", err)
	}
	calls, _ := fr.Take()
	exectest.AssertCalls(t, "failing apply", calls, seq(
		s.check("applications", "loadbalance", "nat-isp1", "pass-isp1"),
		s.load("applications", "loadbalance")))

	fr.FailCall(0)
	res, err := ap.Apply(ctx, noisp1, 2)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	calls, _ = fr.Take()
	exectest.AssertCalls(t, "retry", calls, seq(
		s.check("loadbalance", "nat-isp1", "pass-isp1"),
		s.load("loadbalance", "nat-isp1", "pass-isp1"),
		one(routeChange("203.0.113.200")),
		one(kill("gwstated:isp1")), one(kill("gwstated:https"))))
	if !slices.Equal(res.Changed, []string{"loadbalance", "nat-isp1", "pass-isp1"}) {
		t.Errorf("retry changed %q", res.Changed)
	}
	if !ap.Holds(noisp1) {
		t.Error("not holding noisp1 after retry")
	}
}

// TestFailureAfterLoads: a failed route or state kill is retried by the
// next Apply without loading anything again.
func TestFailureAfterLoads(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(2)
	ap, fr, s := newPfctlApplier(t, cfg)
	if _, err := ap.Apply(ctx, rulesetUp(t, cfg, "isp1", "isp2"), 1); err != nil {
		t.Fatal(err)
	}
	fr.Take()
	noisp1 := rulesetUp(t, cfg, "isp2")

	r := fr.On(exectest.ArgsEqual(routeChange("203.0.113.200")...), "", exectest.CmdErr(1, "", "route: writing to routing socket: Network is unreachable"))
	r.Times = 1
	if _, err := ap.Apply(ctx, noisp1, 2); !errors.Is(err, ErrRoute) {
		t.Fatalf("Apply: %v, want ErrRoute", err)
	}
	calls, _ := fr.Take()
	exectest.AssertCalls(t, "route fails", calls, seq(
		s.check("applications", "loadbalance", "nat-isp1", "pass-isp1"),
		s.load("applications", "loadbalance", "nat-isp1", "pass-isp1"),
		one(routeChange("203.0.113.200"))))

	k := fr.On(exectest.ArgsEqual(kill("gwstated:https")...), "", exectest.CmdErr(1, "", "pfctl: DIOCKILLSTATES: Operation not permitted"))
	k.Times = 1
	if _, err := ap.Apply(ctx, noisp1, 2); !errors.Is(err, ErrKillStates) {
		t.Fatalf("Apply: %v, want ErrKillStates", err)
	}
	calls, _ = fr.Take()
	exectest.AssertCalls(t, "kill fails", calls, seq(one(routeChange("203.0.113.200")), one(kill("gwstated:isp1")), one(kill("gwstated:https"))))

	if _, err := ap.Apply(ctx, noisp1, 2); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	calls, _ = fr.Take()
	exectest.AssertCalls(t, "kill retried", calls, one(kill("gwstated:https")))
}

// TestLinkBackBeforeRetry: isp1's nat anchor is emptied, then a load
// fails; before the retry isp1 is up again, so its states are not killed.
func TestLinkBackBeforeRetry(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(2)
	ap, fr, _ := newPfctlApplier(t, cfg)
	if _, err := ap.Apply(ctx, rulesetUp(t, cfg, "isp1", "isp2"), 1); err != nil {
		t.Fatal(err)
	}
	fr.Take()
	fr.FailCall(8) // 4 checks, applications, loadbalance, nat-isp1, pass-isp1
	if _, err := ap.Apply(ctx, rulesetUp(t, cfg, "isp2"), 2); !errors.Is(err, ErrLoad) {
		t.Fatalf("Apply: %v, want ErrLoad", err)
	}
	fr.FailCall(0)
	res, err := ap.Apply(ctx, rulesetUp(t, cfg, "isp1", "isp2"), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Killed) != 0 {
		t.Errorf("killed %q for a link that came back", res.Killed)
	}
	if !slices.Equal(res.Changed, []string{"nat-isp1", "applications", "loadbalance"}) {
		t.Errorf("changed %q, want [nat-isp1 applications loadbalance]", res.Changed)
	}
}

// TestDefaultRouteAddWhenMissing: route(8) of route.c 1.267 prints "change
// net default: gateway G: not in table" on standard output and exits 1
// when there is no default route (the emulator has none here); only then
// is the route added.
func TestDefaultRouteAddWhenMissing(t *testing.T) {
	ctx := context.Background()
	gw := netip.MustParseAddr("198.51.100.100")
	for _, tc := range []struct {
		name   string
		rtable int
		script *execrun.CmdError // a scripted answer to change, instead of the emulator's
		want   [][]string
		err    error
	}{{
		name: "no default route: change, then add",
		want: [][]string{routeChange("198.51.100.100"), routeAdd("198.51.100.100")},
	}, {
		name:   "other failure: no add",
		script: exectest.CmdErr(1, "change net default: gateway 198.51.100.100: Network is unreachable", ""),
		want:   [][]string{routeChange("198.51.100.100")},
		err:    ErrRoute,
	}, {
		name:   "rtable 2",
		rtable: 2,
		want: [][]string{
			{"/sbin/route", "-T", "2", "-n", "change", "default", "198.51.100.100"},
			{"/sbin/route", "-T", "2", "-n", "add", "default", "198.51.100.100"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			emu := newEmu(pfrule.OpenBSD)
			fr := &exectest.Runner{Fallback: emu}
			if tc.script != nil {
				fr.On(exectest.HasArgs("change", "default"), "", tc.script)
			}
			b, err := NewPfctl(fr, PfctlOptions{Dir: t.TempDir(), Rtable: tc.rtable})
			if err != nil {
				t.Fatal(err)
			}
			ap := NewApplier(b, Options{})
			rs := Ruleset{DefaultRoute: gw}
			_, err = ap.Apply(ctx, rs, 1)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Apply: %v, want %v", err, tc.err)
			}
			calls, _ := fr.Take()
			exectest.AssertCalls(t, tc.name, calls, tc.want)
			if got := emu.DefaultRoute(tc.rtable, false); tc.err == nil && got != gw {
				t.Errorf("default route of rtable %d: %v, want %v", tc.rtable, got, gw)
			}
		})
	}
}

// TestKillStatesOff: pf.kill_states false kills nothing.
func TestKillStatesOff(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(2)
	cfg.PF.KillStates = false
	ap, fr, _ := newPfctlApplier(t, cfg)
	for i, up := range [][]string{{"isp1", "isp2"}, {"isp2"}, {"isp1"}} {
		res, err := ap.Apply(ctx, rulesetUp(t, cfg, up...), uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Killed) != 0 {
			t.Errorf("up=%v: killed %q with kill_states off", up, res.Killed)
		}
	}
	calls, _ := fr.Take()
	for _, c := range calls {
		if slices.Contains(c, "-k") {
			t.Errorf("state kill with kill_states off: %q", c)
		}
	}
}

// TestKillOnlyWithAnotherLinkUp: a single link going away kills nothing
// (nowhere else to go); with a second link up it kills the failed link's
// states only — never the round-robin label, never a global flush.
func TestKillOnlyWithAnotherLinkUp(t *testing.T) {
	ctx := context.Background()
	cfg := applyConfig(1)
	ap, fr, _ := newPfctlApplier(t, cfg)
	for i, up := range [][]string{{"isp1"}, nil} {
		if _, err := ap.Apply(ctx, rulesetUp(t, cfg, up...), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	calls, _ := fr.Take()
	for _, c := range calls {
		if slices.Contains(c, "-k") || slices.Contains(c, "-F") {
			t.Errorf("single link down: unexpected %q", c)
		}
	}

	cfg3 := applyConfig(3)
	ap, fr, _ = newPfctlApplier(t, cfg3)
	for i, up := range [][]string{{"isp1", "isp2", "isp3"}, {"isp1", "isp3"}} {
		if _, err := ap.Apply(ctx, rulesetUp(t, cfg3, up...), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	calls, _ = fr.Take()
	var kills [][]string
	for _, c := range calls {
		if slices.Contains(c, "-k") || slices.Contains(c, "-F") {
			kills = append(kills, c)
		}
	}
	exectest.AssertCalls(t, "isp2 fails of three", kills, one(kill("gwstated:isp2")))
}

// TestRemovedAnchorEmptiedLast: a link removed from the config has its
// anchors emptied after the balancing anchors stop using it.
func TestRemovedAnchorEmptiedLast(t *testing.T) {
	ctx := context.Background()
	ap, fr, s := newPfctlApplier(t, applyConfig(3))
	if _, err := ap.Apply(ctx, rulesetUp(t, applyConfig(3), "isp1", "isp2", "isp3"), 1); err != nil {
		t.Fatal(err)
	}
	fr.Take()
	cfg2 := applyConfig(2)
	if _, err := ap.Apply(ctx, rulesetUp(t, cfg2, "isp1", "isp2"), 2); err != nil {
		t.Fatal(err)
	}
	calls, _ := fr.Take()
	// Nothing returns, so everything that only loses rules for isp3 —
	// pass-isp1/2 lose their rule for em3 — goes after loadbalance, and the
	// removed anchors last.
	exectest.AssertCalls(t, "isp3 removed", calls, seq(
		s.check("loadbalance", "pass-isp1", "pass-isp2", "nat-isp3", "pass-isp3"),
		s.load("loadbalance", "pass-isp1", "pass-isp2", "nat-isp3", "pass-isp3"),
		one(kill("gwstated:isp3"))))
}

func TestApplyRefusesBadAnchorName(t *testing.T) {
	ap, fr, _ := newPfctlApplier(t, applyConfig(2))
	for _, name := range []string{"../etc/passwd", "a/b", "..", "-f", "_anchor", "", "Nat", "x y", strings.Repeat("a", 64)} {
		_, err := ap.Apply(context.Background(), Ruleset{Anchors: []Anchor{{Name: name, Kind: KindNAT, Rules: "pass\n"}}}, 1)
		if !errors.Is(err, ErrValidate) || !errors.Is(err, ErrAnchorName) {
			t.Errorf("anchor %q: %v, want ErrValidate and ErrAnchorName", name, err)
		}
	}
	if calls, _ := fr.Take(); len(calls) != 0 {
		t.Errorf("commands run for bad names: %q", calls)
	}
}

// TestInvocationCounts reports pfctl/route invocations per transition for
// 2 and 8 links (the figures of issue 6), and checks they do not grow with
// the number of links: a single link failing or returning touches its nat
// and pass anchors and the balancing anchors only.
func TestInvocationCounts(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{2, 8} {
		cfg := applyConfig(n)
		var all, but1 []string
		for _, l := range cfg.Links {
			all = append(all, l.Name)
			if l.Name != "isp1" {
				but1 = append(but1, l.Name)
			}
		}
		ap, fr, _ := newPfctlApplier(t, cfg)
		counts := map[string]int{}
		for _, tr := range []struct {
			name string
			up   []string
		}{{"start", all}, {"isp1 fails", but1}, {"isp1 returns", all}, {"isp2 fails", append([]string{"isp1"}, all[2:]...)}} {
			if _, err := ap.Apply(ctx, rulesetUp(t, cfg, tr.up...), 1); err != nil {
				t.Fatal(err)
			}
			calls, _ := fr.Take()
			counts[tr.name] = len(calls)
			t.Logf("%d links, %-13s %2d invocations", n, tr.name+":", len(calls))
		}
		// isp1 (sticky https, default route) failing: 4 anchors × (check +
		// load) + route + 2 kills; returning: the same loads + route; isp2
		// failing: 3 anchors × 2 + 1 kill.
		want := map[string]int{"start": 2*(2*n+2) + 1, "isp1 fails": 11, "isp1 returns": 9, "isp2 fails": 7}
		for k, w := range want {
			if counts[k] != w {
				t.Errorf("%d links, %s: %d invocations, want %d", n, k, counts[k], w)
			}
		}
	}
}
