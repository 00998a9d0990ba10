package nftapply

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// StateKiller deletes the conntrack entries of one address family whose
// mark equals mark (the whole 32 bits), and nothing else. No matching
// entry is no error. Apply calls it in step 4 for each link that stopped
// being ready (Options.Killer).
type StateKiller interface {
	// KillMark deletes the entries of family (4 or 6) carrying mark and
	// returns the processes it ran (Result.Commands counts them).
	KillMark(ctx context.Context, family int, mark uint32) (procs int, err error)
}

// ExecKiller runs `conntrack -D -f ipv4|ipv6 --mark M` through R: one
// process per mark. It is the Applier's default and the agent's fallback
// when ctnetlink cannot be used in-process (NetlinkKiller).
type ExecKiller struct {
	R Runner
}

// KillMark implements StateKiller. conntrack(8) exits 1 when there were
// no entries ("0 flow entries have been deleted"); that is no failure.
func (k ExecKiller) KillMark(ctx context.Context, family int, mark uint32) (int, error) {
	f := "ipv4"
	if family == 6 {
		f = "ipv6"
	}
	_, err := k.R.Run(ctx, nil, "conntrack", "-D", "-f", f, "--mark", strconv.FormatUint(uint64(mark), 10))
	var ce *CmdError
	if errors.As(err, &ce) && strings.Contains(ce.Stderr, " 0 flow entries") {
		return 1, nil
	}
	return 1, err
}
