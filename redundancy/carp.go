package redundancy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"gwstated/internal/execrun"
)

// DefaultIfconfig is the path of OpenBSD's ifconfig(8).
const DefaultIfconfig = "/sbin/ifconfig"

// maxIfaceName is the longest interface or group name (IFNAMSIZ 16, less
// the terminating NUL).
const maxIfaceName = 15

// CARPVHID is the state of one virtual host of a carp(4) interface, as
// ifconfig(8) prints it.
type CARPVHID struct {
	Interface string `json:"interface"` // carp0
	State     string `json:"state"`     // INIT, BACKUP or MASTER
	Carpdev   string `json:"carpdev"`   // the parent interface, "none" when unset
	VHID      int    `json:"vhid"`
	Advbase   int    `json:"advbase"`
	Advskew   int    `json:"advskew"`
}

// ErrInterfaceName: a name from the config that is not an interface or
// group name and must not reach ifconfig's command line.
var ErrInterfaceName = errors.New("invalid interface or group name")

// checkIfName accepts interface and interface group names: a lower-case
// letter, then letters and digits, at most 15 bytes (IFNAMSIZ 16).
func checkIfName(name string) error {
	if name == "" || len(name) > maxIfaceName {
		return fmt.Errorf("%w: %q must be 1 to %d bytes", ErrInterfaceName, name, maxIfaceName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("%w: %q: byte %d (%q): want a lower-case letter, then letters and digits", ErrInterfaceName, name, i, c)
		}
	}
	return nil
}

// ReadCARP runs `ifconfig <iface>` and returns its CARP virtual hosts.
// ifconfig is the path of ifconfig(8) (DefaultIfconfig when empty).
func ReadCARP(ctx context.Context, r execrun.Runner, ifconfig, iface string) ([]CARPVHID, error) {
	if err := checkIfName(iface); err != nil {
		return nil, fmt.Errorf("carp.interfaces: %w", err)
	}
	if ifconfig == "" {
		ifconfig = DefaultIfconfig
	}
	out, err := r.Run(ctx, ifconfig, iface)
	if err != nil {
		return nil, err
	}
	return ParseCARP(iface, out)
}

// ParseCARP reads the carp lines of `ifconfig carpN` output. OpenBSD's
// ifconfig (sbin/ifconfig/ifconfig.c, carp_status) prints one line for a
// single virtual host:
//
//	carp: MASTER carpdev em0 vhid 1 advbase 1 advskew 0
//
// (with " carppeer <addr>" appended for unicast), and for several
// (carpnodes, balancing) a header and one line per virtual host:
//
//	carp: carpdev em0 advbase 1 balancing ip
//		state MASTER vhid 1 advskew 0
//		state BACKUP vhid 2 advskew 100
//
// An interface without a carp line is an error.
func ParseCARP(iface string, out []byte) ([]CARPVHID, error) {
	var vh []CARPVHID
	var hdr CARPVHID
	inMulti := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "carp:" && len(f) > 1 && f[1] != "carpdev":
			v := CARPVHID{Interface: iface, State: f[1]}
			if err := carpFields(&v, f[2:]); err != nil {
				return nil, fmt.Errorf("ifconfig %s: %q: %w", iface, sc.Text(), err)
			}
			vh = append(vh, v)
			inMulti = false
		case f[0] == "carp:":
			hdr = CARPVHID{Interface: iface}
			if err := carpFields(&hdr, f[1:]); err != nil {
				return nil, fmt.Errorf("ifconfig %s: %q: %w", iface, sc.Text(), err)
			}
			inMulti = true
		case f[0] == "state" && inMulti && len(f) > 1:
			v := hdr
			v.State = f[1]
			if err := carpFields(&v, f[2:]); err != nil {
				return nil, fmt.Errorf("ifconfig %s: %q: %w", iface, sc.Text(), err)
			}
			vh = append(vh, v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ifconfig %s: reading its output: %w", iface, err)
	}
	if len(vh) == 0 {
		return nil, fmt.Errorf("ifconfig %s: no carp state in its output (is it a carp interface with a vhid?)", iface)
	}
	return vh, nil
}

// carpFields reads "key value" pairs of a carp line into v; unknown keys
// (carppeer, balancing) are skipped with their value.
func carpFields(v *CARPVHID, f []string) error {
	for i := 0; i+1 < len(f); i += 2 {
		k, val := f[i], f[i+1]
		var dst *int
		switch k {
		case "carpdev":
			v.Carpdev = val
			continue
		case "vhid":
			dst = &v.VHID
		case "advbase":
			dst = &v.Advbase
		case "advskew":
			dst = &v.Advskew
		default:
			continue
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("%s %q is not a number", k, val)
		}
		*dst = n
	}
	return nil
}

// Demoter raises and lowers the CARP demotion counter of an interface group
// for this node: `ifconfig -g <group> carpdemote <n>` when the node is
// impaired, `ifconfig -g <group> -carpdemote <n>` when it is healthy again
// (ifconfig(8): carpdemote adds to the group's counter, -carpdemote
// subtracts). It remembers its own demotion, so it never demotes twice and
// never takes back a demotion someone else made (rc(8) at boot, an
// operator). The memory is the process's: a restart while demoted leaves
// the counter raised by n until an operator lowers it.
type Demoter struct {
	r        execrun.Runner
	ifconfig string
	group    string
	by       int

	mu      sync.Mutex
	demoted bool
}

// NewDemoter returns a Demoter for group (carp.group; "carp" when empty)
// that demotes by `by` (carp.demote; 0 disables demotion). ifconfig is the
// path of ifconfig(8) (DefaultIfconfig when empty).
func NewDemoter(r execrun.Runner, ifconfig, group string, by int) (*Demoter, error) {
	if group == "" {
		group = "carp"
	}
	if err := checkIfName(group); err != nil {
		return nil, fmt.Errorf("carp.group: %w", err)
	}
	if by < 0 || by > 1024 {
		return nil, fmt.Errorf("carp.demote: %d is not between 0 and 1024", by)
	}
	if ifconfig == "" {
		ifconfig = DefaultIfconfig
	}
	return &Demoter{r: r, ifconfig: ifconfig, group: group, by: by}, nil
}

// Set demotes the group when impaired and this Demoter has not, and lowers
// its own demotion when not impaired. It reports whether it ran ifconfig.
// With carp.demote 0 it does nothing.
func (d *Demoter) Set(ctx context.Context, impaired bool) (changed bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.by == 0 || impaired == d.demoted {
		return false, nil
	}
	arg := "carpdemote"
	if !impaired {
		arg = "-carpdemote"
	}
	if _, err := d.r.Run(ctx, d.ifconfig, "-g", d.group, arg, strconv.Itoa(d.by)); err != nil {
		return false, fmt.Errorf("carp group %s: %w", d.group, err)
	}
	d.demoted = impaired
	return true, nil
}

// Demoted reports whether this Demoter holds a demotion of the group.
func (d *Demoter) Demoted() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.demoted
}
