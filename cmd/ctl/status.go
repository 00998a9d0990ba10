package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"gwstated/cluster"
	"io"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func init() {
	register(&command{
		name:    "status",
		args:    "[--config FILE | --endpoints URLS --cluster NAME] [--json] [--watch]",
		summary: "show the cluster: etcd, leader, nodes, links, overrides, warnings",
		help: `Status reads the cluster's records from etcd and shows, in this order:
the cluster name; etcd health (members, raft leader, each endpoint's
answer); the agent leader (owner of the election key) and since when; the
current verdict (seq, time, deciding node, active links); every node with
its gossip state as its peers report it (alive, suspect, dead, left; gone
when the node has no nodes/ record), its role in the redundancy protocol
(ROLE: carp0=MASTER on a CARP pair, vrrp=BACKUP on a keepalived VRRP pair),
mode (etcd, hold, gossip),
the verdict seq it applied, its ruleset hash and config hash; every link
with its verdict, since when, the override in force and the reason; each
node's view of each link (state, loss, RTT, last answered probe); the
operator overrides with reason and expiry.

Every disagreement is printed as a line starting with "warning:" after
the tables: ruleset hash mismatch between nodes at the same verdict seq, a
node behind the verdict seq, config hash drift between nodes, an impaired
node, a node in hold or gossip mode, an apply error, a node without a
nodes/ record, a suspect or dead member, a link down or all links down, an
etcd endpoint that does not answer, no leader, an expired override still
in etcd.

In the tables, "*" after a node marks the agent leader, "*" after a link's
verdict marks a link that carries the balanced traffic, "!" after an
applied seq marks an apply error (see the warnings), and "-" an absent
value. Times are local; "ago" is counted from the reading.

--watch redraws whenever a record under the cluster's prefix changes,
until interrupted (the screen is cleared between draws only when standard
output is a terminal).

` + connHelp + `

--json prints one JSON object (with --watch, one per draw):
  cluster     string   cluster name
  time        string   RFC 3339 time of the reading
  health      string   "healthy", "degraded" or "unreachable"
  error       string   why etcd is unreachable (only then)
  etcd        object   members [{name, leader}], leader (member name),
                       endpoints [{endpoint, ok, member, version, error, alarms}]
  leader      object   {node, since} of the agent leader, or null
  verdict     object   {seq, time, leader, config_hash, audit_seq, active,
                       all_down, impaired [{node, link}]}, or null
  nodes       array    {name, gossip, record, witness, leader, carp
                       [{interface, state, demote}] (VRRP: interface
                       "vrrp"), mode, version,
                       config_hash, reported_at, applied {node, seq, hash,
                       time, error, backend} or null}
  links       array    {name, state, observed, since, reason, active,
                       suppressed, override, views [{node, state, loss,
                       rtt_ms, since, last_ok}]}
  overrides   array    {link, action, reason, by, since, until, expired}
  warnings    array    of strings, the warning lines without "warning: "
Times are RFC 3339; absent times are omitted. Fields may be added; none
will be renamed or removed.

Exit status: 0 healthy (no warning), 1 degraded (at least one warning),
2 etcd unreachable or bad command line.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) int {
			cf := addConnFlags(fs)
			asJSON := fs.Bool("json", false, "print JSON (see above) instead of tables")
			watch := fs.Bool("watch", false, "redraw on every change until interrupted")
			return func(ctx context.Context, std *stdio, args []string) int {
				if len(args) > 0 {
					fmt.Fprintf(std.err, "gwctl status: unexpected argument %q\n", args[0])
					return exitUsage
				}
				return runStatus(ctx, std, cf, *asJSON, *watch)
			}
		},
	})
}

// Health values of Status.Health.
const (
	healthHealthy     = "healthy"
	healthDegraded    = "degraded"
	healthUnreachable = "unreachable"
)

func runStatus(ctx context.Context, std *stdio, cf *connFlags, asJSON, watch bool) int {
	printFn := printStatusText
	if asJSON {
		printFn = printStatusJSON
	}
	c, err := cf.open(ctx)
	if err != nil {
		if asJSON && errors.Is(err, cluster.ErrEtcdUnreachable) {
			printStatusJSON(std.out, unreachableStatus(cf.cluster, err, std.now()), std.now())
			fmt.Fprintf(std.err, "gwctl: %v\n", err)
			return exitUsage
		}
		return connExit(std, err)
	}
	defer c.Close()
	if !watch {
		in, err := gatherStatus(ctx, c)
		if err != nil {
			if asJSON && errors.Is(err, cluster.ErrEtcdUnreachable) {
				printStatusJSON(std.out, unreachableStatus(c.name, err, std.now()), std.now())
			}
			fmt.Fprintf(std.err, "gwctl: %v\n", err)
			return exitUsage
		}
		now := std.now()
		st := computeStatus(in, now)
		printFn(std.out, st, now)
		return st.exitCode()
	}
	return watchStatus(ctx, std, c, printFn)
}

// watchStatus draws the status, then redraws it after every change under
// the cluster's prefix, until ctx ends; it returns the last draw's status.
func watchStatus(ctx context.Context, std *stdio, c *conn, printFn func(io.Writer, Status, time.Time)) int {
	code := exitOK
	var events clientv3.WatchChan
	stopWatch := func() {}
	defer func() { stopWatch() }()
	for {
		in, err := gatherStatus(ctx, c)
		if ctx.Err() != nil {
			return code
		}
		now := std.now()
		if std.isTerminal {
			fmt.Fprint(std.out, "\x1b[H\x1b[2J")
		}
		if err != nil {
			fmt.Fprintf(std.out, "%s  %v\n", fmtTime(now, now), err)
			code = exitUsage
		} else {
			st := computeStatus(in, now)
			printFn(std.out, st, now)
			code = st.exitCode()
			if events == nil {
				events, stopWatch = c.watch(ctx, in.Revision+1)
			}
		}
		if !std.isTerminal {
			fmt.Fprintln(std.out)
		}
		if events == nil {
			// etcd did not answer: read again after the request timeout.
			select {
			case <-ctx.Done():
				return code
			case <-time.After(c.timeout):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return code
		case wr, ok := <-events:
			if !ok || wr.Err() != nil {
				// The watch ended (etcd lost its leader, or compaction):
				// read again and start a new watch from that reading.
				stopWatch()
				events = nil
				continue
			}
		}
		// Coalesce events that are already waiting into one redraw.
		for drained := false; !drained; {
			select {
			case wr, ok := <-events:
				if !ok || wr.Err() != nil {
					stopWatch()
					events = nil
					drained = true
				}
			default:
				drained = true
			}
		}
	}
}

// gatherRecords reads the cluster's records in one transaction (a
// consistent snapshot: cluster.Store.Snapshot).
func gatherRecords(ctx context.Context, c *conn) (statusInput, error) {
	in := statusInput{Cluster: c.name}
	if c.cfg != nil {
		in.Links = c.knownLinks(nil)
		in.ConfigNodes = map[string]bool{}
		for n, spec := range c.cfg.Nodes {
			in.ConfigNodes[n] = spec.Witness
		}
	}
	rctx, cancel := c.request(ctx)
	defer cancel()
	snap, err := retryNoLeader(rctx, c.store().Snapshot)
	if err != nil {
		return in, c.storeErr("read cluster records", err)
	}
	in.Snapshot = snap
	return in, nil
}

// gatherStatus reads the cluster's records (gatherRecords) and asks etcd
// for its members and every endpoint for its status.
func gatherStatus(ctx context.Context, c *conn) (statusInput, error) {
	in, err := gatherRecords(ctx, c)
	if err != nil {
		return in, err
	}
	rctx, cancel := c.request(ctx)
	defer cancel()
	ml, err := c.cli.MemberList(rctx)
	if err != nil {
		in.MembersErr = err.Error()
	} else {
		for _, m := range ml.Members {
			in.Members = append(in.Members, etcdMemberInfo{ID: m.ID, Name: m.Name})
		}
	}
	for _, ep := range c.endpoints {
		ei := endpointInfo{Endpoint: ep}
		sctx, scancel := c.memberRequest(ctx)
		s, err := c.cli.Status(sctx, ep)
		scancel()
		if err != nil {
			ei.Err = c.requestErr("status", err).Error()
		} else {
			ei.MemberID, ei.LeaderID, ei.Version = s.Header.MemberId, s.Leader, s.Version
			ei.Alarms = s.Errors
		}
		in.Endpoints = append(in.Endpoints, ei)
	}
	return in, nil
}
