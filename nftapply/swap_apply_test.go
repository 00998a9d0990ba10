package nftapply_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"gwstated/nftapply"
)

// countingNFT is an NFTables that counts commits and can refuse them.
type countingNFT struct {
	inner nftapply.NFTables
	mu    sync.Mutex
	n     int
	fail  error
}

func (c *countingNFT) Commit(ctx context.Context, b nftapply.Batch) error {
	c.mu.Lock()
	c.n++
	fail := c.fail
	c.mu.Unlock()
	if fail != nil {
		return fail
	}
	return c.inner.Commit(ctx, b)
}

func (c *countingNFT) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = 0
	return n
}

// syncBuffer is a log sink for one test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestApplySwapFastPath: with the rule swap, a link failure runs
// conntrack -D and one ip -batch and no nft process; a recovery runs the
// two ip -batch; the first load is nft -f. Every state of the recipe is
// read back, and Repair finds no drift after a swap.
func TestApplySwapFastPath(t *testing.T) {
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
			nl := &countingNFT{inner: nftapply.NetlinkConn{Netns: ns}}
			opts := nftapply.OptionsFromConfig(cfg, nil)
			opts.NFTables = nl
			a := nftapply.NewApplier(rec, opts)
			both := []string{"isp1", "isp2"}
			steps := []struct {
				name       string
				allDown    string
				up, active []string
				procs      []string
			}{
				{"allworking", "", both, both, []string{"ip -batch", "nft -f", "ip -batch"}}, // first load
				{"noisp1", "", []string{"isp2"}, []string{"isp2"}, []string{"conntrack -D", "ip -batch"}},
				{"allworking", "", both, both, []string{"ip -batch", "ip -batch"}},
				{"noisp2", "", []string{"isp1"}, []string{"isp1"}, []string{"conntrack -D", "ip -batch"}},
				{"alldown-keep", "keep", nil, []string{"isp1"}, nil},
				{"alldown-none", "none", nil, nil, []string{"ip -batch"}},
				{"alldown-all", "all", nil, both, []string{"ip -batch"}},
				{"allworking", "", both, both, nil},
			}
			for i, s := range steps {
				cfg.AllDown = s.allDown
				p, err := nftapply.Render(cfg, verdict(cfg, s.up, s.active))
				if err != nil {
					t.Fatal(err)
				}
				res, err := a.Apply(ctx, p, uint64(i+1))
				if err != nil {
					t.Fatalf("step %d %s: %v", i, s.name, err)
				}
				procs := procNames(writes(rec.takeProcs()))
				commits := nl.take()
				if i == 0 {
					if res.Swapped || commits != 0 {
						t.Errorf("first load swapped (%d commits)", commits)
					}
				} else if res.Table && (!res.Swapped || commits != 1) {
					t.Errorf("step %d %s: table changed without a swap (%d commits): %+v", i, s.name, commits, res)
				}
				if s.procs != nil && !slices.Equal(procs, s.procs) {
					t.Errorf("step %d %s: ran %q, want %q", i, s.name, procs, s.procs)
				}
				if res.Commands != len(procs) {
					t.Errorf("step %d %s: Result.Commands %d, %d processes ran", i, s.name, res.Commands, len(procs))
				}
				assertKernel(t, ctx, ns, cfg, p)
				d, err := a.Repair(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(d.Found) > 0 || d.Result.Writes() > 0 {
					t.Errorf("step %d %s: drift after the apply: %q %+v", i, s.name, d.Found, d.Result)
				}
				rec.takeProcs()
			}
		})
	}
}

// TestApplySwapRefused: when the kernel refuses the swap (the chain it
// flushes is not there: the table was changed behind the Applier's back),
// nothing changed, Apply says so once in its log and loads the table with
// nft -f; when nft -f refuses it too, Apply reports nft's error.
func TestApplySwapRefused(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	rec := &recorder{inner: nftapply.ExecRunner{Netns: ns}}
	nl := &countingNFT{inner: nftapply.NetlinkConn{Netns: ns}}
	var logs syncBuffer
	opts := nftapply.OptionsFromConfig(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	opts.NFTables = nl
	a := nftapply.NewApplier(rec, opts)
	both := []string{"isp1", "isp2"}
	all := renderUp(t, cfg, both)
	no1 := renderUp(t, cfg, []string{"isp2"})
	if _, err := a.Apply(ctx, all, 1); err != nil {
		t.Fatal(err)
	}
	rec.takeProcs()
	// Behind the Applier's back: chain lan renamed.
	renamed := strings.ReplaceAll(all.Table, "lan", "lan2")
	renamed = strings.ReplaceAll(renamed, "gwstated:loadbalance2", "gwstated:loadbalance")
	if out, err := runStdin(t, "delete table inet gwstated\n"+renamed, "ip", "netns", "exec", ns, "nft", "-f", "-"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	res, err := a.Apply(ctx, no1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Swapped || nl.take() != 1 {
		t.Errorf("refused swap: %+v", res)
	}
	if got := procNames(rec.takeProcs()); !slices.Equal(got, []string{"nft -f", "conntrack -D", "ip -batch"}) {
		t.Errorf("after the refused swap ran %q, want nft -f first", got)
	}
	if n := strings.Count(logs.String(), "nft rule swap refused"); n != 1 {
		t.Errorf("refusal logged %d times:\n%s", n, logs.String())
	}
	assertKernel(t, ctx, ns, cfg, no1)

	// Both refuse: a table nft cannot load (a hand-made Plan whose text
	// is not its rules' is never swapped, so refuse the swap by hand).
	nl.fail = errors.New("refused by the test")
	bad := all
	bad.Table = strings.Replace(all.Table, "masquerade", "masquerade to :99999", 1)
	bad.Hash = "bad"
	_, err = a.Apply(ctx, bad, 3)
	if err == nil || !errors.Is(err, nftapply.ErrValidate) && !errors.Is(err, nftapply.ErrLoad) {
		t.Fatalf("bad table: %v, want ErrValidate or ErrLoad", err)
	}
	if !strings.Contains(err.Error(), "nft") {
		t.Errorf("error does not carry nft's text: %v", err)
	}
}

// TestApplySwapSkeletonChange: when the kernel's table has changed (a
// chain added by hand, a rule added by hand), Repair loads the table with
// nft -f; the next transition swaps again.
func TestApplySwapSkeletonChange(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	rec := &recorder{inner: nftapply.ExecRunner{Netns: ns}}
	nl := &countingNFT{inner: nftapply.NetlinkConn{Netns: ns}}
	opts := nftapply.OptionsFromConfig(cfg, nil)
	opts.NFTables = nl
	a := nftapply.NewApplier(rec, opts)
	all := renderUp(t, cfg, []string{"isp1", "isp2"})
	if _, err := a.Apply(ctx, all, 1); err != nil {
		t.Fatal(err)
	}
	inNetns(t, ns, "nft", "add", "chain", "inet", "gwstated", "extra")
	rec.takeProcs()
	d, err := a.Repair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Found) != 1 || d.Result.Swapped || !d.Result.Table || nl.take() != 0 {
		t.Errorf("repair of an added chain: %q %+v", d.Found, d.Result)
	}
	if got := procNames(writes(rec.takeProcs())); !slices.Equal(got, []string{"nft -f"}) {
		t.Errorf("repair wrote with %q, want nft -f", got)
	}
	assertKernel(t, ctx, ns, cfg, all)

	// A rule added by hand is only a rule, but Repair loads with nft -f
	// all the same (it converges whatever nft lists).
	inNetns(t, ns, "nft", "add", "rule", "inet", "gwstated", "lan", "counter")
	rec.takeProcs()
	d, err = a.Repair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Found) != 1 || d.Result.Swapped || !d.Result.Table || nl.take() != 0 {
		t.Errorf("repair of an added rule: %q %+v", d.Found, d.Result)
	}
	if got := procNames(writes(rec.takeProcs())); !slices.Equal(got, []string{"nft -f"}) {
		t.Errorf("repair wrote with %q, want nft -f", got)
	}
	assertKernel(t, ctx, ns, cfg, all)
	// The next transition swaps again.
	res, err := a.Apply(ctx, renderUp(t, cfg, []string{"isp2"}), 2)
	if err != nil || !res.Swapped {
		t.Errorf("after a repair: %v %+v", err, res)
	}
}

// TestApplySwapValidates: a table the kernel accepted as a swap is
// remembered as valid, like one nft -f loaded: a recovery to it, which
// adds rules before the table, is not checked again; a recovery to a
// table never accepted is checked first, by the swap's batch sent as a
// check (no process), not nft -c.
func TestApplySwapValidates(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	cfg.AllDown = "none"
	rec := &recorder{inner: nftapply.ExecRunner{Netns: ns}}
	opts := nftapply.OptionsFromConfig(cfg, nil)
	opts.NFTables = nftapply.NetlinkConn{Netns: ns}
	a := nftapply.NewApplier(rec, opts)
	all := renderUp(t, cfg, []string{"isp1", "isp2"})
	no1 := renderUp(t, cfg, []string{"isp2"})
	no2 := renderUp(t, cfg, []string{"isp1"})
	none := renderUp(t, cfg, nil)
	for i, step := range []struct {
		name            string
		p               nftapply.Plan
		validated, nftC bool
	}{
		{"allworking (nft -f)", all, true, true},
		{"noisp1 (swap)", no1, false, false},
		{"alldown (swap)", none, false, false},
		{"noisp1 again (recovery to a swapped table)", no1, false, false},
		{"alldown again", none, false, false},
		{"noisp2 (recovery to a table never accepted: the swap's check)", no2, true, false},
	} {
		res, err := a.Apply(ctx, step.p, uint64(i+1))
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		procs := procNames(rec.takeProcs())
		if res.Validated != step.validated || slices.Contains(procs, "nft -c") != step.nftC {
			t.Errorf("%s: validated %v, ran %q; want validated %v, nft -c %v", step.name, res.Validated, procs, step.validated, step.nftC)
		}
		if i > 0 && !res.Swapped {
			t.Errorf("%s: not swapped: %+v", step.name, res)
		}
		assertKernel(t, ctx, ns, cfg, step.p)
	}
}

// TestApplySwapCheckRefused: when the swap's check is refused on a
// recovery (rules go in before the table), nft -c checks the table
// instead and nft -f loads it; the swap itself is not tried.
func TestApplySwapCheckRefused(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	cfg.AllDown = "none"
	rec := &recorder{inner: nftapply.ExecRunner{Netns: ns}}
	nl := &countingNFT{inner: nftapply.NetlinkConn{Netns: ns}}
	var logs syncBuffer
	opts := nftapply.OptionsFromConfig(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	opts.NFTables = nl
	a := nftapply.NewApplier(rec, opts)
	for i, up := range [][]string{{"isp1", "isp2"}, nil} {
		if _, err := a.Apply(ctx, renderUp(t, cfg, up), uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	rec.takeProcs()
	nl.take()
	nl.fail = errors.New("refused by the test")
	no2 := renderUp(t, cfg, []string{"isp1"})
	res, err := a.Apply(ctx, no2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := procNames(rec.takeProcs()); !slices.Equal(got, []string{"nft -c", "ip -batch", "nft -f"}) {
		t.Errorf("ran %q, want nft -c, ip -batch, nft -f", got) // the default route via isp1 stayed
	}
	if n := nl.take(); n != 1 || res.Swapped || !res.Validated {
		t.Errorf("%d commits (want the check only), result %+v", n, res)
	}
	if n := strings.Count(logs.String(), "refused by its check"); n != 1 {
		t.Errorf("check refusal logged %d times:\n%s", n, logs.String())
	}
	assertKernel(t, ctx, ns, cfg, no2)
}
