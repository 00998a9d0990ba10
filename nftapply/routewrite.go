package nftapply

import (
	"context"
	"errors"
	"strings"
)

// RouteWriter carries the route and rule writes of Apply (steps 2 and 5):
// ExecRouteWriter (one `ip -force -batch -` process) or NetlinkRouteWriter
// (rtnetlink in-process, no process). Options.Routes; its method is
// nftapply's own.
type RouteWriter interface {
	// writeOps tries every op in order. failed maps the 1-based position
	// of each op that failed to its error text; every op not in it took
	// effect. err is returned only when the outcome of the ops is unknown
	// (nothing could be attributed to an op); procs is the processes run.
	writeOps(ctx context.Context, family int, ops []ipOp) (failed map[int]string, procs int, err error)
}

// ExecRouteWriter writes routes and rules with one `ip -force -batch -`
// through R (each failed line is named by ip on stderr). It is the
// Applier's default and the agent's fallback when rtnetlink cannot be
// opened in-process.
type ExecRouteWriter struct {
	R Runner
}

func (w ExecRouteWriter) writeOps(ctx context.Context, family int, ops []ipOp) (map[int]string, int, error) {
	var in strings.Builder
	for _, o := range ops {
		in.WriteString(o.line)
		in.WriteByte('\n')
	}
	_, err := w.R.Run(ctx, []byte(in.String()), "ip", famFlag(family), "-force", "-batch", "-")
	if err == nil {
		return nil, 1, nil
	}
	var failed map[int]string
	var ce *CmdError
	if errors.As(err, &ce) {
		failed = batchFailures(ce.Stderr)
	}
	if len(failed) == 0 {
		return nil, 1, err
	}
	return failed, 1, nil
}
