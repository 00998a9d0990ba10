//go:build linux

package nftapply

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"
)

// NetlinkKiller deletes conntrack entries in-process, with no process: one
// ctnetlink IPCTNL_MSG_CT_DELETE carrying no tuple but CTA_MARK, a full
// CTA_MARK_MASK and the address family (nfgenmsg version 1), which the
// kernel runs as a flush with a filter: one pass over the table, in the
// kernel, deleting exactly the entries of that family with that mark.
// Each KillMark opens its own netlink socket (in the namespace given to
// OpenNetlinkKiller) and closes it: nothing is held between calls.
type NetlinkKiller struct {
	netns string // a named network namespace (/run/netns/NAME); "": the caller's
}

// ctnetlinkMinKernel is the first Linux whose filtered flush honours the
// address family (e7600865db32, 5.3: nfgenmsg version 1); the mark filter
// on flush is older. Before it a flush by mark would delete the other
// family's entries with that mark too.
var ctnetlinkMinKernel = [2]int{5, 3}

// OpenNetlinkKiller checks that ctnetlink can be used here (Linux 5.3 or
// later; the netlink socket opens, in netns when it is not "", and the
// kernel answers a conntrack statistics read, which also loads
// nf_conntrack_netlink) and returns the killer. An error says why not;
// the caller falls back to ExecKiller.
func OpenNetlinkKiller(netns string) (*NetlinkKiller, error) {
	if netns != "" {
		if err := checkNetnsName(netns); err != nil {
			return nil, err
		}
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	if v, ok := kernelVersion(rel); !ok || v[0] < ctnetlinkMinKernel[0] || v[0] == ctnetlinkMinKernel[0] && v[1] < ctnetlinkMinKernel[1] {
		return nil, fmt.Errorf("kernel %s: a ctnetlink flush by mark honours the address family from Linux %d.%d", rel, ctnetlinkMinKernel[0], ctnetlinkMinKernel[1])
	}
	k := &NetlinkKiller{netns: netns}
	c, err := k.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.StatsGlobal(); err != nil {
		return nil, fmt.Errorf("ctnetlink: reading conntrack statistics: %w (is nf_conntrack_netlink available?)", err)
	}
	return k, nil
}

// kernelVersion reads "6.18.44-foo" as {6, 18}.
func kernelVersion(release string) ([2]int, bool) {
	var v [2]int
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return v, false
	}
	for i := range 2 {
		s := parts[i]
		if j := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			s = s[:j]
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func (k *NetlinkKiller) dial() (*conntrack.Conn, error) {
	cfg := &netlink.Config{}
	if k.netns != "" {
		f, err := openNetns(k.netns)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	c, err := conntrack.Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("ctnetlink socket: %w", err)
	}
	return c, nil
}

// KillMark implements StateKiller; it runs no process (procs 0). The
// kernel answers the flush with success whether or not any entry matched.
func (k *NetlinkKiller) KillMark(ctx context.Context, family int, mark uint32) (int, error) {
	var l3 netfilter.ProtoFamily
	switch family {
	case 4:
		l3 = netfilter.ProtoIPv4
	case 6:
		l3 = netfilter.ProtoIPv6
	default:
		return 0, fmt.Errorf("address family %d", family)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c, err := k.dial()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	err = c.FlushFilter(conntrack.NewFilter().Family(l3).Mark(mark).MarkMask(0xffffffff))
	if err != nil {
		var oe *netlink.OpError
		if errors.As(err, &oe) && errors.Is(oe.Err, unix.EOPNOTSUPP) {
			return 0, fmt.Errorf("ctnetlink delete by mark (ipv%d): %w (kernel without CONFIG_NF_CONNTRACK_MARK?)", family, err)
		}
		return 0, fmt.Errorf("ctnetlink delete by mark (ipv%d): %w", family, err)
	}
	return 0, nil
}
