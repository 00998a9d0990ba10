package redundancy

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"gwstated/internal/execrun"
)

// The keepalived states a conntrackd hand-off is run for (the argument of
// `gwctl ctsync`, what keepalived's notify_master, notify_backup and
// notify_fault lines pass).
const (
	HandoffMaster = "master"
	HandoffBackup = "backup"
	HandoffFault  = "fault"
)

// ErrHandoff marks a hand-off that cannot be run as asked (unknown state,
// unusable path).
var ErrHandoff = errors.New("conntrackd hand-off")

// HandoffSteps returns the conntrackd command lines (arguments after the
// program) that hand the connection state over when this node enters
// state, in the order they must run: conntrackd's own primary-backup.sh
// (conntrack-tools, doc/sync/primary-backup.sh), without its shell.
//
//   - master: commit the external cache (the peer's connections) into the
//     kernel table (-c), then flush both caches (-f), load the internal
//     cache from the kernel table (-R: the committed entries become this
//     node's own, which conntrackd does not learn from its own commit's
//     events) and send them to the peer in bulk (-B), so that the next
//     master change finds them in the peer's external cache. The commit
//     comes first: it is what lets the connections through, and -f would
//     throw away what it commits.
//   - backup: shorten the kernel timers of this node's entries (-t: they
//     belong to connections that now go through the peer) and ask the
//     master for a full resync (-n).
//   - fault: -t only.
//
// conntrackConf is conntrackd's configuration file (-C), which names the
// UNIX socket of the daemon to talk to: one per daemon (and per network
// namespace, in the lab).
func HandoffSteps(state, conntrackConf string) ([][]string, error) {
	if !filepath.IsAbs(conntrackConf) || strings.ContainsFunc(conntrackConf, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("%w: conntrackd config %q: want an absolute path without control characters", ErrHandoff, conntrackConf)
	}
	c := func(op string) []string { return []string{"-C", conntrackConf, op} }
	switch state {
	case HandoffMaster:
		return [][]string{c("-c"), c("-f"), c("-R"), c("-B")}, nil
	case HandoffBackup:
		return [][]string{c("-t"), c("-n")}, nil
	case HandoffFault:
		return [][]string{c("-t")}, nil
	}
	return nil, fmt.Errorf("%w: state %q: want %s, %s or %s", ErrHandoff, state, HandoffMaster, HandoffBackup, HandoffFault)
}

// Handoff runs HandoffSteps(state, conntrackConf) with conntrackd (the
// program's path) through r, one after the other. Like primary-backup.sh
// it runs every step even when one fails (a failed flush must not prevent
// the resync) and returns the failures joined; a cancelled ctx stops it.
func Handoff(ctx context.Context, r execrun.Runner, conntrackd, state, conntrackConf string) error {
	steps, err := HandoffSteps(state, conntrackConf)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(conntrackd) || strings.ContainsFunc(conntrackd, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: conntrackd %q: want an absolute path without control characters", ErrHandoff, conntrackd)
	}
	var errs []error
	for _, args := range steps {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if _, err := r.Run(ctx, conntrackd, args...); err != nil {
			errs = append(errs, fmt.Errorf("%w (%s)", err, stepMeaning[args[len(args)-1]]))
		}
	}
	return errors.Join(errs...)
}

var stepMeaning = map[string]string{
	"-c": "commit the peer's connections into the kernel table",
	"-f": "flush conntrackd's caches",
	"-R": "reload conntrackd's internal cache from the kernel table",
	"-B": "send this node's connections to the peer",
	"-t": "shorten the kernel timers of this node's connections",
	"-n": "ask the master for its connections",
}
