package nftapply

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// maxValid bounds the cache of validated tables; when full it starts
// again (a configuration has a few dozen likely tables at most).
const maxValid = 256

// isValid reports whether nft accepted this exact script before.
func (a *Applier) isValid(script string) bool {
	a.vmu.Lock()
	defer a.vmu.Unlock()
	return a.valid[sha256.Sum256([]byte(script))]
}

func (a *Applier) markValid(script string) {
	a.vmu.Lock()
	defer a.vmu.Unlock()
	if a.valid == nil || len(a.valid) >= maxValid {
		a.valid = map[[sha256.Size]byte]bool{}
	}
	a.valid[sha256.Sum256([]byte(script))] = true
}

// Prevalidate runs the tables of plans through nft -c ahead of need and
// remembers (by the hash of the text) those nft accepts, so that an Apply
// of one of them skips its own nft -c: the check leaves the packet path.
// The agent calls it, off its loop, with the plans one link change away
// from the verdict in force. Tables validated before are skipped; the
// rest go to one nft -c (each "table; delete table; table {...}" in turn,
// one check transaction); if nft refuses that, each is checked alone, so
// the good ones are still remembered. It returns how many tables it
// checked and accepted, and an error naming the plans nft refused (those
// are checked again, on the packet path, if a verdict ever needs them).
// It does not wait for a running Apply, nor an Apply for it.
func (a *Applier) Prevalidate(ctx context.Context, plans []Plan) (int, error) {
	var todo []string
	var hashes []string
	for _, p := range plans {
		if CheckPlan(p) != nil {
			continue // Apply refuses it anyway
		}
		s := Script(p)
		if a.isValid(s) || slices.Contains(todo, s) {
			continue
		}
		todo = append(todo, s)
		hashes = append(hashes, p.Hash)
	}
	if len(todo) == 0 {
		return 0, nil
	}
	if _, err := a.r.Run(ctx, []byte(strings.Join(todo, "")), "nft", "-c", "-f", "-"); err == nil {
		for _, s := range todo {
			a.markValid(s)
		}
		return len(todo), nil
	} else if ctx.Err() != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for i, s := range todo {
		if _, err := a.r.Run(ctx, []byte(s), "nft", "-c", "-f", "-"); err != nil {
			errs = append(errs, fmt.Errorf("%w: plan %.12s: %w", ErrValidate, hashes[i], err))
			continue
		}
		a.markValid(s)
		n++
	}
	return n, errors.Join(errs...)
}
