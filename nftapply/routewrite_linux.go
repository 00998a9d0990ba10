//go:build linux

package nftapply

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetlinkRouteWriter writes Apply's routes and rules in-process over
// rtnetlink (github.com/vishvananda/netlink): each op is one request,
// as `ip route replace` / `ip rule add|del` send it, in the namespace given
// to OpenNetlinkRouteWriter. Every op is tried; the kernel's error (with
// its extended-ack text) is that op's failure. One netlink socket per
// call, closed after it.
type NetlinkRouteWriter struct {
	netns string // a named network namespace; "": the caller's
}

// OpenNetlinkRouteWriter checks that rtnetlink opens (in netns when it is
// not "") and returns the writer; an error says why not.
func OpenNetlinkRouteWriter(netns string) (*NetlinkRouteWriter, error) {
	if netns != "" {
		if err := checkNetnsName(netns); err != nil {
			return nil, err
		}
	}
	w := &NetlinkRouteWriter{netns: netns}
	h, err := w.handle()
	if err != nil {
		return nil, err
	}
	h.Close()
	return w, nil
}

func (w *NetlinkRouteWriter) handle() (*netlink.Handle, error) {
	var h *netlink.Handle
	var err error
	if w.netns == "" {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		f, ferr := openNetns(w.netns)
		if ferr != nil {
			return nil, ferr
		}
		defer f.Close()
		h, err = netlink.NewHandleAt(netns.NsHandle(f.Fd()), unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	// A kernel that never answers is an op's failure, not a hang.
	if err := h.SetSocketTimeout(10 * time.Second); err != nil {
		h.Close()
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	return h, nil
}

func (w *NetlinkRouteWriter) writeOps(ctx context.Context, family int, ops []ipOp) (map[int]string, int, error) {
	fam := unix.AF_INET
	if family == 6 {
		fam = unix.AF_INET6
	}
	h, err := w.handle()
	if err != nil {
		return nil, 0, err
	}
	defer h.Close()
	failed := map[int]string{}
	for i, o := range ops {
		if err := ctx.Err(); err != nil {
			failed[i+1] = err.Error()
			continue
		}
		var err error
		switch {
		case o.route != nil:
			err = replaceRoute(h, fam, *o.route)
		case o.del:
			err = h.RuleDel(nlRule(fam, *o.rule))
		default:
			err = h.RuleAdd(nlRule(fam, *o.rule))
		}
		if err != nil {
			failed[i+1] = err.Error()
		}
	}
	return failed, 0, nil
}

// replaceRoute is `ip route replace default via GW dev DEV [table T]`.
func replaceRoute(h *netlink.Handle, fam int, rt Route) error {
	link, err := h.LinkByName(rt.Dev)
	if err != nil {
		return fmt.Errorf("dev %s: %w", rt.Dev, err)
	}
	table := int(rt.Table)
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	bits := 32
	if fam == unix.AF_INET6 {
		bits = 128
	}
	return h.RouteReplace(&netlink.Route{
		Family:    fam,
		LinkIndex: link.Attrs().Index,
		Dst:       &net.IPNet{IP: make(net.IP, bits/8), Mask: net.CIDRMask(0, bits)},
		Gw:        net.IP(rt.Gateway.AsSlice()),
		Table:     table,
	})
}

// nlRule is r as `ip rule add|del` sends it: no fwmask (the kernel takes
// all 32 bits), a host prefix for from, main as table 254.
func nlRule(fam int, r Rule) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = fam
	nr.Priority = r.Priority
	nr.Mark = r.Fwmark
	nr.Table = int(r.Table)
	if r.Table == 0 {
		nr.Table = unix.RT_TABLE_MAIN
	}
	if r.From.IsValid() {
		nr.Src = &net.IPNet{IP: net.IP(r.From.AsSlice()), Mask: net.CIDRMask(r.From.BitLen(), r.From.BitLen())}
	}
	if r.SuppressMain {
		nr.SuppressPrefixlen = 0
	}
	return nr
}
