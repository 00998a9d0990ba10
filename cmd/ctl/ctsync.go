package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"gwstated/internal/execrun"
	"gwstated/redundancy"
)

func init() {
	register(&command{
		name:    "ctsync",
		args:    "master|backup|fault [--conntrackd-config FILE] [--conntrackd PATH]",
		summary: "hand the connection state over with conntrackd (keepalived notify)",
		help: `Ctsync runs the conntrackd commands that hand a firewall pair's
connection state over when this node enters a VRRP state, in order, with
argument lists (no shell): the steps of conntrackd's primary-backup.sh.
keepalived runs one program per notify line and runs the lines of one
transition at the same time, so the steps, which must not overlap, are
run by gwctl from one line each:

    notify_master "/usr/sbin/gwctl ctsync master"
    notify_backup "/usr/sbin/gwctl ctsync backup"
    notify_fault  "/usr/sbin/gwctl ctsync fault"

master: conntrackd -c (commit the peer's connections into the kernel
table: established connections continue through this node), -f, -R (the
committed entries become this node's own) and -B (send them to the peer,
for the next master change). backup: -t (shorten the timers of this
node's entries) and -n (ask the master for its connections). fault: -t.

Every step runs even when an earlier one fails; each failure is printed
with what the step was for.

Exit status: 0 every step succeeded, 1 a step failed, 2 bad command line.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) int {
			conf := fs.String("conntrackd-config", "/etc/conntrackd/conntrackd.conf", "conntrackd's configuration `file` (its -C: names the daemon's UNIX socket)")
			bin := fs.String("conntrackd", "/usr/sbin/conntrackd", "conntrackd's `path`")
			return func(ctx context.Context, std *stdio, args []string) int {
				if len(args) != 1 {
					fmt.Fprintf(std.err, "gwctl ctsync: want one state (master, backup or fault), got %d arguments\n", len(args))
					return exitUsage
				}
				if _, err := redundancy.HandoffSteps(args[0], *conf); err != nil {
					fmt.Fprintf(std.err, "gwctl ctsync: %v\n", err)
					return exitUsage
				}
				if !filepath.IsAbs(*bin) {
					fmt.Fprintf(std.err, "gwctl ctsync: --conntrackd %q: want an absolute path\n", *bin)
					return exitUsage
				}
				if err := redundancy.Handoff(ctx, execrun.ExecRunner{}, *bin, args[0], *conf); err != nil {
					fmt.Fprintf(std.err, "gwctl ctsync %s: %v\n", args[0], err)
					return exitFail
				}
				return exitOK
			}
		},
	})
}
