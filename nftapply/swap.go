package nftapply

import (
	"context"
	"errors"
)

// ErrNoNetlink: the system has no nf_tables netlink (not Linux); the swap
// is never tried there.
var ErrNoNetlink = errors.New("nf_tables netlink rule swap is not supported on this system")

// NFTables sends nf_tables batches to the kernel, each as one transaction.
// NetlinkConn is the real one; tests and the agent inject theirs through
// Options.NFTables.
type NFTables interface {
	// Commit sends b as one nf_tables transaction: the kernel applies all
	// of it or, when it refuses any message (the error), none of it.
	Commit(ctx context.Context, b Batch) error
}

// Batch is a rule swap as nf_tables netlink messages (swapBatch builds it
// from a Plan's rules): for each chain in Chains, flush the chain and add
// its new rules with their anonymous sets and comments. The table, its
// comment and its chains are not touched.
type Batch struct {
	Table  string   // family inet
	Chains []string // the chains whose rules are replaced
	msgs   []nlMsg
	check  bool // sent without the batch end: validated, then aborted
}

// CheckOnly is b as a check: sent without its batch end, so the kernel
// validates every message as for a commit and then aborts the
// transaction: nothing changes; a refusal is the same error. It is
// nft -c of the swap, in-process.
func (b Batch) CheckOnly() Batch {
	b.check = true
	return b
}

// Len is the number of messages in the batch (without its begin and end).
func (b Batch) Len() int { return len(b.msgs) }

// nlMsg is one netlink message: header type and flags (without length,
// sequence and port, which the connection fills in) and payload.
type nlMsg struct {
	typ   uint16
	flags uint16
	data  []byte
}

// swapPlan decides whether the change from the table text the kernel
// holds (old) to p's is a rule swap: p has its rules as data (Render's),
// they write p.Table exactly, and both texts have the same skeleton (the
// same table, comment, chains, types, hooks, priorities and policies;
// only rules inside chains differ). It returns the chains whose rules
// differ, in p's order; ok is false when nft -f must load the table.
func swapPlan(old string, p Plan) (chains []string, ok bool) {
	if old == "" || p.rules == nil || p.rules.name != p.TableName || p.rules.text() != p.Table {
		return nil, false
	}
	oldSk, oldRules := chainRules(old)
	newSk, newRules := chainRules(p.Table)
	if oldSk != newSk {
		return nil, false
	}
	for _, c := range p.rules.chains {
		o, n := oldRules[c.name], newRules[c.name]
		if len(o) != len(n) {
			chains = append(chains, c.name)
			continue
		}
		for i := range o {
			if o[i] != n[i] {
				chains = append(chains, c.name)
				break
			}
		}
	}
	return chains, len(chains) > 0
}
