package pfapply

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gwstated/internal/atomicfile"
	"gwstated/internal/execrun"
)

// Default paths of the OpenBSD base system tools.
const (
	DefaultPfctl = "/sbin/pfctl"
	DefaultRoute = "/sbin/route"
)

// PfctlOptions configures the pfctl backend. Zero fields take the default
// given in the field's comment.
type PfctlOptions struct {
	Pfctl string // pfctl(8); default /sbin/pfctl
	Route string // route(8); default /sbin/route
	// Dir holds the rule files pfctl reads (pf.dir): <anchor>.pending while
	// it is checked and loaded, <anchor>.conf once pf holds it. Files are
	// mode 0600; the directory is created with mode 0700. Required.
	Dir string
	// Rtable is the routing table of the default route (pf.rtable); 0 is
	// the default table, > 0 adds "-T <rtable>" to route(8).
	Rtable int
}

// Pfctl is the pfctl backend: it changes pf with pfctl(8) and the default
// route with route(8), through a Runner.
//
//	validate  pfctl -n -a <anchor> -f <dir>/<anchor>.pending
//	load      pfctl -a <anchor> -f <dir>/<anchor>.pending   (replaces the
//	          anchor's rules in one transaction; no flush first)
//	read      pfctl -a <anchor> -sr
//	route     route [-T n] -n change default <gw>, and when route says the
//	          default route is not in the table, route [-T n] -n add default <gw>
//	kill      pfctl -k label -k <label>
//
// State kills, as found in OpenBSD's pfctl(8) (pfctl.8 since 5.x; pfctl.c
// rev 1.397 of 2025-05-26, OpenBSD 7.7/7.8): -k takes host | network |
// label | id | key. "pfctl -k label -k <label>" kills the states created by
// rules carrying that label (psk_label is compared with the label of the
// rule that created the state, not of match rules); "-k id -k <id>" one
// state; "-k key -k '<proto> <host:port> <-|-> <host:port>'" one state key.
// OpenBSD has NO "-k gateway" form: pfctl would take "gateway" as a host
// name and fail. That form — kill states whose route-to gateway is an
// address — is FreeBSD's (commit abbcba9cf5b1, May 2021, FreeBSD 13.1 and
// 14.0; pfSense). So on OpenBSD states of a dead link are found by label:
// gwstated:<link> for its pass rules and gwstated:<sticky> for a sticky
// class pinned to it. States the round-robin rule (gwstated:loadbalance)
// sent to the dead gateway cannot be told from the healthy links' states
// and are left to time out; killing that label would cut every balanced
// connection.
type Pfctl struct {
	r    execrun.Runner
	opts PfctlOptions
}

// NewPfctl returns the pfctl backend.
func NewPfctl(r execrun.Runner, opts PfctlOptions) (*Pfctl, error) {
	if r == nil {
		return nil, errors.New("pfctl backend: no Runner")
	}
	if opts.Dir == "" {
		return nil, errors.New("pf.dir: empty; the pfctl backend writes its rule files there")
	}
	if opts.Rtable < 0 {
		return nil, fmt.Errorf("pf.rtable: %d is negative", opts.Rtable)
	}
	if opts.Pfctl == "" {
		opts.Pfctl = DefaultPfctl
	}
	if opts.Route == "" {
		opts.Route = DefaultRoute
	}
	return &Pfctl{r: r, opts: opts}, nil
}

// pendingPath is the file pfctl reads for anchor name; name is checked.
func (p *Pfctl) pendingPath(name string) string {
	return filepath.Join(p.opts.Dir, name+".pending")
}

// writePending writes the anchor's rules to its pending file (mode 0600).
func (p *Pfctl) writePending(a Anchor) (string, error) {
	if err := checkAnchor(a); err != nil {
		return "", err
	}
	if err := os.MkdirAll(p.opts.Dir, 0o700); err != nil {
		return "", fmt.Errorf("pf.dir: %w", err)
	}
	path := p.pendingPath(a.Name)
	if err := atomicfile.WriteFile(path, []byte(a.Rules), 0o600); err != nil {
		return "", fmt.Errorf("anchor %q: writing %s: %w", a.Name, path, err)
	}
	return path, nil
}

// Validate implements Backend: each anchor is written to its pending file
// and parsed with pfctl -n; every failing anchor is reported.
func (p *Pfctl) Validate(ctx context.Context, anchors []Anchor) error {
	var errs []error
	for _, a := range anchors {
		path, err := p.writePending(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := p.r.Run(ctx, p.opts.Pfctl, "-n", "-a", a.Name, "-f", path); err != nil {
			errs = append(errs, fmt.Errorf("anchor %q: %w", a.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Load implements Backend: pfctl -a <anchor> -f <pending file>; on success
// the file is renamed to <anchor>.conf, the record of what pf holds.
func (p *Pfctl) Load(ctx context.Context, a Anchor) error {
	path, err := p.writePending(a)
	if err != nil {
		return err
	}
	if _, err := p.r.Run(ctx, p.opts.Pfctl, "-a", a.Name, "-f", path); err != nil {
		return err
	}
	if err := os.Rename(path, filepath.Join(p.opts.Dir, a.Name+".conf")); err != nil {
		return fmt.Errorf("anchor %q loaded, but keeping its file: %w", a.Name, err)
	}
	return nil
}

// ReadAnchor implements Backend: pfctl -a <anchor> -sr.
func (p *Pfctl) ReadAnchor(ctx context.Context, name string) (string, error) {
	if err := CheckAnchorName(name); err != nil {
		return "", err
	}
	out, err := p.r.Run(ctx, p.opts.Pfctl, "-a", name, "-sr")
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// routeArgs is route(8)'s argument list for cmd (change, add) of the
// default route to gw.
func (p *Pfctl) routeArgs(cmd string, gw netip.Addr) []string {
	var args []string
	if p.opts.Rtable > 0 {
		args = append(args, "-T", strconv.Itoa(p.opts.Rtable))
	}
	args = append(args, "-n", cmd)
	if gw.Is6() {
		args = append(args, "-inet6")
	}
	return append(args, "default", gw.String())
}

// SetDefaultRoute implements Backend. route(8) reports a missing route with
// "not in table" on standard output (and "No such process", ESRCH, from the
// routing socket on standard error) and exits 1; only then is the route
// added.
func (p *Pfctl) SetDefaultRoute(ctx context.Context, gw netip.Addr) error {
	if !gw.IsValid() {
		return fmt.Errorf("%w: no gateway address", ErrRoute)
	}
	_, err := p.r.Run(ctx, p.opts.Route, p.routeArgs("change", gw)...)
	if err == nil {
		return nil
	}
	if !noRoute(err) {
		return err
	}
	_, err = p.r.Run(ctx, p.opts.Route, p.routeArgs("add", gw)...)
	return err
}

// noRoute reports whether a route(8) failure means "there is no such route".
func noRoute(err error) bool {
	var ce *execrun.CmdError
	if !errors.As(err, &ce) || ce.Exit <= 0 {
		return false
	}
	out := ce.Stdout + "\n" + ce.Stderr
	return strings.Contains(out, "not in table") || strings.Contains(out, "No such process")
}

// KillStates implements StateKiller: pfctl -k label -k <label>.
func (p *Pfctl) KillStates(ctx context.Context, label string) error {
	if label == "" || strings.ContainsAny(label, "\x00\n") || strings.HasPrefix(label, "-") || len(label) > maxLabelLen {
		return fmt.Errorf("%w: %q is not a label pfctl can match", ErrKillStates, label)
	}
	_, err := p.r.Run(ctx, p.opts.Pfctl, "-k", "label", "-k", label)
	return err
}
