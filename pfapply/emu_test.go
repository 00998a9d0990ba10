package pfapply

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"gwstated/config"
	"gwstated/pfapply/pfemu"
	"gwstated/pfapply/pfrule"
)

// newEmu is the OpenBSD pfctl/route/ifconfig emulator; failing commands
// are *CmdError as ExecRunner reports them.
func newEmu(dialect pfrule.Dialect) *pfemu.Emu {
	return pfemu.New(pfemu.Options{Dialect: dialect, Seed: 1})
}

func dialectOf(cfg *config.Config) pfrule.Dialect {
	if cfg.PF.Syntax == "legacy" {
		return pfrule.Legacy
	}
	return pfrule.OpenBSD
}

// newEmuApplier is an Applier over the pfctl backend over the emulator.
func newEmuApplier(t *testing.T, cfg *config.Config) (*Applier, *pfemu.Emu, pfctlSteps) {
	t.Helper()
	emu := newEmu(dialectOf(cfg))
	// A default route exists, as on any gateway (route change works).
	emu.SetDefaultRoute(0, cfg.LAN.Network.Addr().Is6(), cfg.Links[0].Gateway)
	dir := t.TempDir()
	b, err := NewPfctl(emu, PfctlOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return NewApplier(b, OptionsFromConfig(cfg, nil)), emu, pfctlSteps{dir: dir}
}

func callLines(cs []pfemu.Call) [][]string {
	out := make([][]string, len(cs))
	for i, c := range cs {
		out[i] = append([]string{c.Name}, c.Args...)
	}
	return out
}

// TestStatesKilledOnEmulator: when isp1 fails, the states of its rules and
// of the sticky class pinned to it are killed in pf (pfctl -k label); the
// round-robin rule's states and isp2's stay.
func TestStatesKilledOnEmulator(t *testing.T) {
	ctx := t.Context()
	cfg := applyConfig(2)
	ap, emu, _ := newEmuApplier(t, cfg)
	if _, err := ap.Apply(ctx, rulesetUp(t, cfg, "isp1", "isp2"), 1); err != nil {
		t.Fatal(err)
	}
	emu.AddStates(
		pfemu.State{Label: "gwstated:isp1"}, pfemu.State{Label: "gwstated:isp1"},
		pfemu.State{Label: "gwstated:https"},
		pfemu.State{Label: "gwstated:loadbalance"}, pfemu.State{Label: "gwstated:loadbalance"},
		pfemu.State{Label: "gwstated:isp2"})
	res, err := ap.Apply(ctx, rulesetUp(t, cfg, "isp2"), 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Killed, []string{"gwstated:isp1", "gwstated:https"}) {
		t.Errorf("killed %q", res.Killed)
	}
	got := emu.StatesByLabel()
	want := map[string]int{"gwstated:loadbalance": 2, "gwstated:isp2": 1}
	if !maps.Equal(got, want) {
		t.Errorf("states left %v, want %v", got, want)
	}
	if gw := emu.DefaultRoute(0, false); gw != netip.MustParseAddr("203.0.113.200") {
		t.Errorf("default route %v", gw)
	}
	if a := emu.Anchor("nat-isp1"); a == nil || len(a.Rules) != 0 {
		t.Errorf("nat-isp1 after isp1 failed: %+v", a)
	}
	lb := emu.Anchor("loadbalance")
	if len(lb.Rules) != 1 || lb.Rules[0].Route == nil || lb.Rules[0].Route.Host.Addr.Prefix.Addr() != netip.MustParseAddr("203.0.113.200") {
		t.Errorf("loadbalance after isp1 failed: %+v", lb.Rules)
	}
}
