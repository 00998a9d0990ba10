package nftapply_test

import (
	"sync"
	"testing"
	"time"

	"gwstated/nftapply"
)

// stepClock advances by step at every reading.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// TestApplyPhases: Result's phase durations are read on Options.Now, from
// the start of the Apply: the table before the conntrack deletion; a step
// that wrote nothing has none.
func TestApplyPhases(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	opts := kernelOptions(t, cfg, ns)
	clk := &stepClock{t: time.Unix(1000, 0), step: 10 * time.Millisecond}
	opts.Now = clk.Now
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
	both := []string{"isp1", "isp2"}
	res := apply(both, both)
	if res.TableIn != 10*time.Millisecond || res.StatesKilled != 0 {
		t.Errorf("first apply: table in %v, states killed %v; want 10ms (one reading after the start), 0", res.TableIn, res.StatesKilled)
	}
	inNetns(t, ns, "conntrack", "-I", "-p", "udp", "-s", "192.168.0.10", "-d", "192.0.2.53",
		"--sport", "1001", "--dport", "53", "--timeout", "300", "--mark", "257")
	res = apply([]string{"isp1"}, []string{"isp1"})
	if len(res.Killed) != 1 {
		t.Fatalf("killed %v, want isp2's mark", res.Killed)
	}
	if res.TableIn != 10*time.Millisecond || res.StatesKilled != 20*time.Millisecond {
		t.Errorf("isp2 down: table in %v, states killed %v; want 10ms, 20ms", res.TableIn, res.StatesKilled)
	}
	res = apply([]string{"isp1"}, []string{"isp1"})
	if res.TableIn != 0 || res.StatesKilled != 0 {
		t.Errorf("unchanged plan: table in %v, states killed %v; want 0, 0", res.TableIn, res.StatesKilled)
	}
}
