package lab

import (
	"slices"
	"strings"
	"testing"
	"time"

	"gwstated/pfapply/pfemu"
)

// loadsOf counts the pfctl loads (-f without -n) a firewall ran.
func loadsOf(t *testing.T, c *Cluster, node string) (loads, reads int) {
	t.Helper()
	err := c.Emu(node, func(e *pfemu.Emu) error {
		for _, call := range e.Snapshot().Calls {
			switch {
			case strings.HasSuffix(call.Name, "pfctl") && slices.Contains(call.Args, "-f") && !slices.Contains(call.Args, "-n"):
				loads++
			case strings.HasSuffix(call.Name, "pfctl") && slices.Equal(call.Args, []string{"-a", "loadbalance", "-sr"}):
				reads++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return loads, reads
}

// TestScenarioPFFailover is the hard-failure scenario with `dataplane: pf`
// on the emulated OpenBSD: probes, cluster and verdicts as ever, and then
// pfctl -n checks and loads, route change and state kills on each
// firewall's emulated pf: cutting isp1 moves both firewalls' pf to the
// rules without it, the default route to isp2 and kills isp1's states;
// restoring it brings everything back.
func TestScenarioPFFailover(t *testing.T) {
	c := startCluster(t, ClusterOptions{Dataplane: DataplanePF})
	ctx := t.Context()
	up := allUp(c)
	if len(up) < 2 {
		t.Skip("needs two ISPs")
	}
	isps := c.Lab.ISPs()
	for _, fw := range []string{FW1, FW2} {
		err := c.Emu(fw, func(e *pfemu.Emu) error {
			e.AddStates(pfemu.State{Label: "gwstated:" + up[0]}, pfemu.State{Label: "gwstated:" + up[0]},
				pfemu.State{Label: "gwstated:loadbalance"}, pfemu.State{Label: "gwstated:" + up[1]})
			if a := e.Anchor("loadbalance"); a == nil || len(a.Tables) != 1 {
				t.Errorf("%s: loadbalance does not hold the pool's automatic table: %+v", fw, a)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Lab.Cut(ctx, up[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRules(ctx, without(up, up[0]), 30*time.Second); err != nil {
		t.Fatalf("cut %s: %v", up[0], err)
	}
	for _, fw := range []string{FW1, FW2} {
		err := c.Emu(fw, func(e *pfemu.Emu) error {
			if gw := e.DefaultRoute(0, false); gw != isps[1].Gateway4 {
				t.Errorf("%s: default route %v, want %v", fw, gw, isps[1].Gateway4)
			}
			st := e.StatesByLabel()
			if st["gwstated:"+up[0]] != 0 || st["gwstated:loadbalance"] != 1 || st["gwstated:"+up[1]] != 1 {
				t.Errorf("%s: states after %s failed: %v", fw, up[0], st)
			}
			checks := 0
			for _, call := range e.Snapshot().Calls {
				if slices.Contains(call.Args, "-n") {
					checks++
				}
			}
			if checks == 0 {
				t.Errorf("%s: no pfctl -n check ran", fw)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Lab.Restore(ctx, up[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRules(ctx, up, 40*time.Second); err != nil {
		t.Fatalf("restore %s: %v", up[0], err)
	}
	for _, fw := range []string{FW1, FW2} {
		err := c.Emu(fw, func(e *pfemu.Emu) error {
			// The default route is the first active link's gateway again.
			if gw := e.DefaultRoute(0, false); gw != isps[0].Gateway4 {
				t.Errorf("%s: default route %v after %s returned, want %v", fw, gw, up[0], isps[0].Gateway4)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestScenarioPFDrift: with `dataplane: pf` on the emulated OpenBSD and
// pf.drift_interval 1s, ten drift checks with nothing changed reload
// nothing (the balanced pool is an automatic table that the check reads
// with -T show); a pool or a quick changed by hand on fw1 is reloaded by
// the next check, and only there.
func TestScenarioPFDrift(t *testing.T) {
	c := startCluster(t, ClusterOptions{Dataplane: DataplanePF})
	ctx := t.Context()
	var loads0, reads0 [2]int
	for i, fw := range []string{FW1, FW2} {
		loads0[i], reads0[i] = loadsOf(t, c, fw)
	}
	err := Wait(ctx, 40*time.Second, "ten drift checks on both firewalls", func() (bool, error) {
		for i, fw := range []string{FW1, FW2} {
			if _, r := loadsOf(t, c, fw); r < reads0[i]+10 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, fw := range []string{FW1, FW2} {
		l, r := loadsOf(t, c, fw)
		t.Logf("%s: %d drift checks, %d reloads", fw, r-reads0[i], l-loads0[i])
		if l != loads0[i] {
			t.Errorf("%s: %d reloads over %d drift checks with nothing changed", fw, l-loads0[i], r-reads0[i])
		}
	}

	for _, edit := range []struct{ name, anchor, from, to string }{
		{"pool changed by hand", "loadbalance", c.Lab.ISPs()[1].Gateway4.String(), "192.0.2.99"},
		{"quick added by hand", c.Config.PF.NATAnchor(c.Config.Links[0].Name), "match out", "match out quick"},
	} {
		var orig string
		repairs, err := c.MetricSum(ctx, FW1, "gwstated_drift_repairs_total")
		if err != nil {
			t.Fatal(err)
		}
		err = c.Emu(FW1, func(e *pfemu.Emu) error {
			orig = e.Anchor(edit.anchor).Text
			return e.ReplaceAnchorText(edit.anchor, strings.Replace(orig, edit.from, edit.to, 1))
		})
		if err != nil {
			t.Fatal(err)
		}
		err = Wait(ctx, 20*time.Second, "fw1 repairs "+edit.name, func() (bool, error) {
			got, err := c.Anchor(FW1, edit.anchor)
			return got == orig, err
		})
		if err != nil {
			t.Fatal(err)
		}
		err = Wait(ctx, 10*time.Second, "fw1 counts the drift repair", func() (bool, error) {
			n, err := c.MetricSum(ctx, FW1, "gwstated_drift_repairs_total")
			return n > repairs, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, fw := range []string{FW1, FW2} {
		l, _ := loadsOf(t, c, fw)
		want := loads0[i]
		if fw == FW1 {
			want += 2
		}
		if l != want {
			t.Errorf("%s: %d loads after the edits, want %d", fw, l-loads0[i], want-loads0[i])
		}
	}
}
