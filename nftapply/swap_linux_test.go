//go:build linux

package nftapply_test

import (
	"testing"

	"gwstated/config"
	"gwstated/nftapply"
)

// TestSwapRefusedChangesNothing: a batch the kernel refuses at its last
// message (a jump to a chain that does not exist) leaves the table as it
// was: the flush and the new rules before it were not applied either.
func TestSwapRefusedChangesNothing(t *testing.T) {
	l := newSwapLab(t)
	a, before, batch := l.swapBatch(t, parseConfig(t, yamlSticky), []string{"isp1", "isp2"}, []string{"isp1"})
	err := l.nl.Commit(t.Context(), nftapply.WithJumpToMissingChain(batch))
	if err == nil {
		t.Fatal("the kernel accepted a jump to a missing chain")
	}
	t.Logf("refusal: %v", err)
	if got := l.list(t, a.TableName); got != before {
		t.Errorf("a refused batch changed the table:\n%s\nwas\n%s", got, before)
	}
	// The same batch without the bad rule goes through.
	if err := l.nl.Commit(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
}

// TestSwapCheckOnly: a batch sent as a check changes nothing, whether the
// kernel accepts it or refuses it (with the same error as a commit).
func TestSwapCheckOnly(t *testing.T) {
	l := newSwapLab(t)
	a, before, batch := l.swapBatch(t, parseConfig(t, yamlRecipe), []string{"isp1", "isp2"}, []string{"isp2"})
	if err := l.nl.Commit(t.Context(), batch.CheckOnly()); err != nil {
		t.Fatalf("check of a good swap: %v", err)
	}
	if got := l.list(t, a.TableName); got != before {
		t.Errorf("a check changed the table:\n%s\nwas\n%s", got, before)
	}
	if err := l.nl.Commit(t.Context(), nftapply.WithJumpToMissingChain(batch).CheckOnly()); err == nil {
		t.Error("the check accepted a jump to a missing chain")
	}
	if got := l.list(t, a.TableName); got != before {
		t.Errorf("a refused check changed the table:\n%s\nwas\n%s", got, before)
	}
}

// swapBatch loads cfg's plan with the links in from up and returns it,
// the kernel's listing of it, and the swap batch to the plan with the
// links in to up.
func (l *swapLab) swapBatch(t *testing.T, cfg *config.Config, from, to []string) (nftapply.Plan, string, nftapply.Batch) {
	t.Helper()
	a := renderUp(t, cfg, from)
	b := renderUp(t, cfg, to)
	before := l.listingOf(t, a)
	chains, ok := nftapply.SwapChains(a.Table, b)
	if !ok {
		t.Fatal("no swap")
	}
	batch, err := nftapply.SwapBatch(b, chains)
	if err != nil {
		t.Fatal(err)
	}
	return a, before, batch
}
