package nftapply_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"gwstated/nftapply"
)

// procNames is each process as "nft -f", "nft -c", "conntrack -D", "ip -batch"...
func procNames(procs []string) []string {
	var out []string
	for _, p := range procs {
		f := strings.Fields(p)
		switch {
		case f[0] == "nft" && slices.Contains(f, "-c"):
			out = append(out, "nft -c")
		case f[0] == "nft" && slices.Contains(f, "-f"):
			out = append(out, "nft -f")
		case f[0] == "ip" && slices.Contains(f, "-batch"):
			out = append(out, "ip -batch")
		case f[0] == "conntrack":
			out = append(out, "conntrack -D")
		default:
			out = append(out, p)
		}
	}
	return out
}

// TestApplyFailureFastPath: a link failure is three processes, the table
// first and the dead link's conntrack entries next, before the default
// route and the rule deletes (one ip -batch); no nft -c on that path (the
// transaction is the check: nothing precedes it). The recovery needs its
// route and rule before the table, so it checks the table first unless it
// was validated ahead — here it was loaded before, so it is cached. With
// the agent's in-process writers (ctnetlink, rtnetlink) both are one
// process, nft -f.
func TestApplyFailureFastPath(t *testing.T) {
	for _, kk := range killerKinds {
		t.Run(kk.name, func(t *testing.T) { testApplyFailureFastPath(t, kk.name, kk.open) })
	}
}

func testApplyFailureFastPath(t *testing.T, killer string, open func(*testing.T, string) nftapply.StateKiller) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	rec := &recorder{inner: nftapply.ExecRunner{Netns: ns}}
	opts := nftapply.OptionsFromConfig(cfg, nil)
	if killer == "netlink" { // exec: the defaults, through rec
		opts.Killer = open(t, ns)
		opts.Routes = netlinkRoutes(t, ns)
	}
	a := nftapply.NewApplier(rec, opts)
	both := []string{"isp1", "isp2"}
	all, err := nftapply.Render(cfg, verdict(cfg, both, both))
	if err != nil {
		t.Fatal(err)
	}
	no1, err := nftapply.Render(cfg, verdict(cfg, []string{"isp2"}, []string{"isp2"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, all, 1); err != nil {
		t.Fatal(err)
	}
	rec.take()
	res, err := a.Apply(ctx, no1, 2)
	if err != nil {
		t.Fatal(err)
	}
	got := procNames(rec.takeProcs())
	want := []string{"nft -f", "conntrack -D", "ip -batch"}
	if killer == "netlink" {
		want = []string{"nft -f"}
	}
	if !slices.Equal(got, want) {
		t.Errorf("failure ran %q, want %q", got, want)
	}
	if res.Validated || res.Commands != len(want) || !res.Table || !res.DefaultRoute || len(res.RulesDeleted) != 1 || !slices.Equal(res.Killed, []uint32{0x100}) {
		t.Errorf("failure result %+v", res)
	}
	assertKernel(t, ctx, ns, cfg, no1)

	res, err = a.Apply(ctx, all, 3)
	if err != nil {
		t.Fatal(err)
	}
	got = procNames(rec.takeProcs())
	want = []string{"ip -batch", "nft -f", "ip -batch"}
	if killer == "netlink" {
		want = []string{"nft -f"}
	}
	if !slices.Equal(got, want) {
		t.Errorf("recovery of a table loaded before ran %q, want %q", got, want)
	}
	if res.Validated {
		t.Error("recovery checked a table that was loaded before")
	}
	assertKernel(t, ctx, ns, cfg, all)
}

// TestPrevalidate: a table validated ahead is not checked again on the
// packet path; one nft refuses is reported, the good ones of the same call
// are still remembered, and an unvalidated table that needs writes before
// it is still checked first (and refused without a write).
func TestPrevalidate(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	rec := &recorder{inner: nftapply.ExecRunner{Netns: ns}}
	a := nftapply.NewApplier(rec, nftapply.OptionsFromConfig(cfg, nil))
	both := []string{"isp1", "isp2"}
	all, err := nftapply.Render(cfg, verdict(cfg, both, both))
	if err != nil {
		t.Fatal(err)
	}
	no1, err := nftapply.Render(cfg, verdict(cfg, []string{"isp2"}, []string{"isp2"}))
	if err != nil {
		t.Fatal(err)
	}
	bad := all
	bad.Table = strings.Replace(bad.Table, "masquerade", "masquerade to :99999", 1)

	// Two good tables in one nft -c.
	n, err := a.Prevalidate(ctx, []nftapply.Plan{all, no1, all})
	if err != nil || n != 2 {
		t.Fatalf("Prevalidate = %d, %v; want 2, nil", n, err)
	}
	if got := procNames(rec.takeProcs()); !slices.Equal(got, []string{"nft -c"}) {
		t.Errorf("Prevalidate ran %q, want one nft -c", got)
	}
	// Validated already: nothing runs.
	if n, err := a.Prevalidate(ctx, []nftapply.Plan{all, no1}); err != nil || n != 0 || len(rec.takeProcs()) != 0 {
		t.Errorf("second Prevalidate = %d, %v: checked again", n, err)
	}
	// A fresh kernel: the first apply needs routes and rules before the
	// table, and the table was validated ahead: no nft -c.
	res, err := a.Apply(ctx, no1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := procNames(rec.takeProcs()); slices.Contains(got, "nft -c") || res.Validated {
		t.Errorf("apply of a table validated ahead ran %q", got)
	}
	assertKernel(t, ctx, ns, cfg, no1)

	// One bad among good ones.
	b := nftapply.NewApplier(rec, nftapply.OptionsFromConfig(cfg, nil))
	n, err = b.Prevalidate(ctx, []nftapply.Plan{all, bad})
	if !errors.Is(err, nftapply.ErrValidate) || n != 1 {
		t.Fatalf("Prevalidate with a bad table = %d, %v; want 1 and ErrValidate", n, err)
	}
	t.Logf("error: %v", err)
	rec.take()
	// The bad one on the packet path, after a recovery-style apply that
	// needs writes first: checked first, refused, nothing written.
	if _, err := b.Apply(ctx, bad, 2); !errors.Is(err, nftapply.ErrValidate) {
		t.Fatalf("bad table: want ErrValidate, got %v", err)
	}
	if w := writes(rec.take()); len(w) != 0 {
		t.Errorf("a refused table wrote %q", w)
	}
	assertKernel(t, ctx, ns, cfg, no1)
}

// TestApplyRefusesBadTableWithoutCheck: when nothing must precede the
// table, the nft -f transaction is the check: a refused table leaves the
// kernel as it was, and the error is ErrValidate.
func TestApplyRefusesBadTableWithoutCheck(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	rec := &recorder{inner: nftapply.ExecRunner{Netns: ns}}
	a := nftapply.NewApplier(rec, nftapply.OptionsFromConfig(cfg, nil))
	both := []string{"isp1", "isp2"}
	all, err := nftapply.Render(cfg, verdict(cfg, both, both))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, all, 1); err != nil {
		t.Fatal(err)
	}
	bad := all
	bad.Table = strings.Replace(bad.Table, "masquerade", "masquerade to :99999", 1)
	rec.take()
	if _, err := a.Apply(ctx, bad, 2); !errors.Is(err, nftapply.ErrValidate) {
		t.Fatalf("want ErrValidate, got %v", err)
	}
	if got := procNames(rec.takeProcs()); !slices.Equal(got, []string{"nft -f"}) {
		t.Errorf("ran %q, want only the refused nft -f", got)
	}
	assertKernel(t, ctx, ns, cfg, all)
}

// TestApplyBatchPartialFailure: in one ip -batch, a route of a link not in
// use that cannot be set is a warning and the other lines still take
// effect; the route is retried at the next Apply.
func TestApplyBatchPartialFailure(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	a := nftapply.NewApplier(nftapply.ExecRunner{Netns: ns}, kernelOptions(t, cfg, ns))
	// isp1's interface down: its gateway is unreachable, its route fails.
	mustRun(t, "ip", "-n", ns, "link", "set", "eth1", "down")
	no1, err := nftapply.Render(cfg, verdict(cfg, []string{"isp2"}, []string{"isp2"}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Apply(ctx, no1, 1)
	if err != nil {
		t.Fatalf("a link not in use without its route: %v", err)
	}
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "via 198.51.100.100 dev eth1 table 100") {
		t.Errorf("errors %q, want isp1's route", res.Errors)
	}
	if len(res.Routes) != 1 || !res.Table || len(res.RulesAdded) == 0 {
		t.Errorf("the other writes did not happen: %+v", res)
	}
	t.Logf("warning: %q", res.Errors)
	mustRun(t, "ip", "-n", ns, "link", "set", "eth1", "up")
	res, err = a.Apply(ctx, no1, 2)
	if err != nil || len(res.Routes) != 1 {
		t.Errorf("retry: %v, routes %q; want isp1's route set", err, res.Routes)
	}
	assertKernel(t, ctx, ns, cfg, no1)
}
