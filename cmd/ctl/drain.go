package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gwstated/cluster"
	"gwstated/linkstate"
)

// defaultDrainWait is how long drain and undrain wait for the nodes.
const defaultDrainWait = 30 * time.Second

// errNotApplied is returned when the wait for the nodes times out.
var errNotApplied = errors.New("override not applied by every alive node")

const drainWaitHelp = `After writing, gwctl waits (--wait, default 30s; 0: do not wait) until
the agent leader has published a verdict that reflects the change and
every alive node (one with a nodes/ record that its peers do not report
dead; witnesses excepted) reports in applied/<node> that it applied that
verdict seq or a later one without error. When the wait times out, gwctl
names each node that did not, with the seq it applied or its apply error,
and exits with status 1; the override stays written.`

func init() {
	register(&command{
		name:    "drain",
		args:    "LINK --reason TEXT [--for DURATION] [--wait DURATION] [--config FILE | --endpoints URLS --cluster NAME]",
		summary: "take a link out of use on every node, whatever the probes say",
		help: `Drain writes an operator override for LINK (action drain) to etcd: the
agent leader then decides the link down, whatever the probes say, and
every node removes it from its pf anchors. --reason is required and goes
into the override and the audit log with who drained it ($SUDO_USER or
$USER, @ the host name). --for sets an expiry (2h, 30m): the leader clears
the override when it passes; without --for the drain lasts until
'gwctl undrain LINK'. Draining a drained link replaces its reason and
expiry.

LINK must be a link of the configuration (--config) or, with
--endpoints alone, a link of the current verdict.

The override and its audit record (kind "override") are written in one
etcd transaction.

` + drainWaitHelp + `

` + connHelp + `

Exit status: 0 applied everywhere (or --wait 0), 1 written but not
applied by every alive node in time, 2 etcd unreachable, unknown link or
bad command line.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) int {
			cf := addConnFlags(fs)
			reason := fs.String("reason", "", "why the link is drained (required; goes to the audit log)")
			dur := fs.Duration("for", 0, "expire the drain after this `duration` (0: until undrain)")
			wait := fs.Duration("wait", defaultDrainWait, "wait this long for every alive node to apply it (0: do not wait)")
			return func(ctx context.Context, std *stdio, args []string) int {
				if len(args) != 1 {
					fmt.Fprintf(std.err, "gwctl drain: want exactly one LINK, got %d arguments\n", len(args))
					return exitUsage
				}
				if strings.TrimSpace(*reason) == "" {
					fmt.Fprintf(std.err, "gwctl drain: --reason is required: say why %s is drained (it goes to the audit log)\n", args[0])
					return exitUsage
				}
				if *dur < 0 || *wait < 0 {
					fmt.Fprintf(std.err, "gwctl drain: --for and --wait must not be negative\n")
					return exitUsage
				}
				return runOverride(ctx, std, cf, overrideRequest{
					link: args[0], action: linkstate.Drain, reason: strings.TrimSpace(*reason), dur: *dur, wait: *wait,
				})
			}
		},
	})
	register(&command{
		name:    "undrain",
		args:    "LINK [--reason TEXT] [--wait DURATION] [--config FILE | --endpoints URLS --cluster NAME]",
		summary: "remove a link's override: the probes decide again",
		help: `Undrain deletes the operator override of LINK, so that the probes decide
the link's state again, and writes an audit record (kind "override",
without override) with who did it and the optional --reason. A link
without an override is left alone (exit status 0).

` + drainWaitHelp + `

` + connHelp + `

Exit status: 0 applied everywhere (or --wait 0, or nothing to undo), 1
written but not applied by every alive node in time, 2 etcd unreachable,
unknown link or bad command line.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) int {
			cf := addConnFlags(fs)
			reason := fs.String("reason", "", "why the override is removed (optional; goes to the audit log)")
			wait := fs.Duration("wait", defaultDrainWait, "wait this long for every alive node to apply it (0: do not wait)")
			return func(ctx context.Context, std *stdio, args []string) int {
				if len(args) != 1 {
					fmt.Fprintf(std.err, "gwctl undrain: want exactly one LINK, got %d arguments\n", len(args))
					return exitUsage
				}
				if *wait < 0 {
					fmt.Fprintf(std.err, "gwctl undrain: --wait must not be negative\n")
					return exitUsage
				}
				return runOverride(ctx, std, cf, overrideRequest{link: args[0], reason: strings.TrimSpace(*reason), wait: *wait})
			}
		},
	})
}

// overrideRequest is one drain (action set) or undrain (action empty).
type overrideRequest struct {
	link   string
	action linkstate.Action // "" clears the override
	reason string
	dur    time.Duration
	wait   time.Duration
}

func runOverride(ctx context.Context, std *stdio, cf *connFlags, req overrideRequest) int {
	c, err := cf.open(ctx)
	if err != nil {
		return connExit(std, err)
	}
	defer c.Close()
	cmd := "drain"
	if req.action == "" {
		cmd = "undrain"
	}
	res, err := writeOverride(ctx, c, req, operator(), std.now())
	if err != nil {
		fmt.Fprintf(std.err, "gwctl %s: %v\n", cmd, err)
		return exitUsage
	}
	if res.unchanged {
		fmt.Fprintf(std.out, "%s has no override; nothing to do\n", req.link)
		return exitOK
	}
	what := req.link + " drained"
	if req.action == "" {
		what = req.link + " undrained"
	} else if !res.override.Until.IsZero() {
		what += " until " + fmtTime(res.override.Until, std.now())
	}
	fmt.Fprintln(std.out, what)
	if req.wait == 0 {
		return exitOK
	}
	seq, nodes, err := waitApplied(ctx, c, req.link, req.action, res.revision, req.wait, std.now)
	if err != nil {
		fmt.Fprintf(std.err, "gwctl %s: %v\n", cmd, err)
		return exitFail
	}
	if len(nodes) == 0 {
		fmt.Fprintf(std.out, "verdict seq %d reflects it; no alive node to wait for\n", seq)
	} else {
		fmt.Fprintf(std.out, "verdict seq %d applied on %s\n", seq, strings.Join(nodes, ", "))
	}
	return exitOK
}

// operator names the person running gwctl: $SUDO_USER or $USER, @ the host.
func operator() string {
	user := os.Getenv("SUDO_USER")
	if user == "" {
		user = os.Getenv("USER")
	}
	if user == "" {
		user = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return user
	}
	return user + "@" + host
}

// overrideResult is what writeOverride did.
type overrideResult struct {
	unchanged bool // undrain of a link without override
	override  linkstate.Override
	revision  int64 // etcd revision read just before the write
}

// writeOverride checks req.link against the known links, then puts (or,
// with an empty action, deletes) its override with an audit record of kind
// override, in one transaction (cluster.Store.PutOverride and
// DeleteOverride, which number the record from the shared audit counter).
func writeOverride(ctx context.Context, c *conn, req overrideRequest, by string, now time.Time) (overrideResult, error) {
	rctx, cancel := c.request(ctx)
	defer cancel()
	store := c.store()
	type read struct {
		verdict     *cluster.VerdictRecord
		hasOverride bool
		rev         int64
	}
	r, err := retryNoLeader(rctx, func(ctx context.Context) (read, error) {
		v, has, rev, err := store.VerdictOverride(ctx, req.link)
		return read{v, has, rev}, err
	})
	verdict, hasOverride, rev := r.verdict, r.hasOverride, r.rev
	if err != nil {
		return overrideResult{}, c.storeErr("read verdict", err)
	}
	links := c.knownLinks(verdict)
	if len(links) == 0 {
		return overrideResult{}, fmt.Errorf("cannot check link %q: no --config given and no verdict in etcd to take the links from", req.link)
	}
	if !slices.Contains(links, req.link) {
		return overrideResult{}, fmt.Errorf("unknown link %q (links: %s)", req.link, strings.Join(links, ", "))
	}
	res := overrideResult{revision: rev}
	if req.action == "" {
		if !hasOverride {
			return overrideResult{unchanged: true}, nil
		}
		// A member without a leader refuses the transaction before
		// proposing it (WithRequireLeader): nothing was written, so it is
		// tried again, on the next endpoint, until --timeout — an election
		// after a sync-segment fault lasts a moment.
		if _, err := retryNoLeader(rctx, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, store.DeleteOverride(ctx, req.link, by, req.reason)
		}); err != nil {
			return overrideResult{}, c.requestErr("delete override", err)
		}
		return res, nil
	}
	res.override = linkstate.Override{Link: req.link, Action: req.action, Reason: req.reason, By: by, Since: now}
	if req.dur > 0 {
		res.override.Until = now.Add(req.dur)
	}
	if _, err := retryNoLeader(rctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, store.PutOverride(ctx, res.override)
	}); err != nil {
		return overrideResult{}, c.requestErr("write override", err)
	}
	return res, nil
}

// waitApplied waits until a verdict reflects the override change of link
// (its Override equals action) and every alive non-witness node has
// applied that verdict seq or a later one without error. It watches the
// cluster's prefix from revision rev+1 and rereads the records on every
// change. It returns the verdict seq and the nodes that applied it, or,
// after wait, an error wrapping errNotApplied naming the nodes that did not.
func waitApplied(ctx context.Context, c *conn, link string, action linkstate.Action, rev int64, wait time.Duration, now func() time.Time) (uint64, []string, error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	events, stop := c.watch(wctx, rev+1)
	defer stop()
	var target uint64
	var pending []string
	for {
		in, err := gatherRecords(wctx, c)
		if err == nil {
			if v := in.Verdict; v != nil && target == 0 && v.Links[link].Override == action {
				target = v.Seq
			}
			if target != 0 {
				var done []string
				pending = pending[:0]
				for _, ns := range computeStatus(in, now()).Nodes {
					if ns.Witness || !ns.alive() {
						continue
					}
					switch a := ns.Applied; {
					case a == nil:
						pending = append(pending, ns.Name+" (no applied record)")
					case a.Error != "":
						pending = append(pending, fmt.Sprintf("%s (apply error at seq %d: %s)", ns.Name, a.Seq, a.Error))
					case a.Seq < target:
						pending = append(pending, fmt.Sprintf("%s (applied seq %d)", ns.Name, a.Seq))
					default:
						done = append(done, ns.Name)
					}
				}
				if len(pending) == 0 {
					return target, done, nil
				}
			}
		} else if wctx.Err() == nil {
			pending = []string{err.Error()}
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return 0, nil, ctx.Err()
			}
			if target == 0 {
				return 0, nil, fmt.Errorf("%w: after %s no verdict reflects the change of %s (is an agent leader running?)", errNotApplied, wait, link)
			}
			return 0, nil, fmt.Errorf("%w: after %s, verdict seq %d is not applied by: %s", errNotApplied, wait, target, strings.Join(pending, ", "))
		case wr, ok := <-events:
			if !ok {
				events = nil // closed as wctx ends; wait for Done
				continue
			}
			if err := wr.Err(); err != nil && wctx.Err() == nil {
				return 0, nil, fmt.Errorf("watch %s: %w", c.keys.Prefix, err)
			}
		}
	}
}
