//go:build !linux

package probe

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// shareSockets: elsewhere (OpenBSD) each source has a raw socket of its
// own, bound to its address. OpenBSD's raw IPv4 sockets take no source
// address per packet (IP_SENDSRCADDR is for UDP), and binding works
// everywhere.
const shareSockets = false

// srcControl is not needed where sockets are bound.
func srcControl(netip.Addr, int, bool) []byte { return nil }

// sendBufs are the buffers of one batch, reused.
type sendBufs struct {
	msgs  []ipv4.Message // = ipv6.Message
	addrs []net.IPAddr
}

// write sends out, one sendmsg each (x/net's WriteBatch outside Linux).
func (c *icmpConn) write(sb *sendBufs, out []outMsg) {
	if len(sb.msgs) < len(out) {
		sb.msgs = make([]ipv4.Message, len(out))
		sb.addrs = make([]net.IPAddr, len(out))
		for i := range sb.msgs {
			sb.msgs[i].Buffers = make([][]byte, 1)
		}
	}
	ms := sb.msgs[:len(out)]
	for i, o := range out {
		sb.addrs[i] = net.IPAddr{IP: o.dst.AsSlice(), Zone: o.dst.Zone()}
		ms[i].Buffers[0], ms[i].OOB, ms[i].Addr = o.pkt, o.oob, &sb.addrs[i]
	}
	write := c.sys.p4.WriteBatch
	if c.key.v6 {
		write = c.sys.p6.WriteBatch
	}
	for i := 0; i < len(ms); {
		n, err := write(ms[i:], 0)
		if err != nil {
			out[i].err = err
			n = 1
		} else if n <= 0 {
			n = len(ms) - i // cannot happen; never loop for ever
		}
		i += n
	}
}

// connSys is the socket: a bound *net.IPConn, read by a goroutine of
// its own.
type connSys struct {
	conn *net.IPConn
	p4   *ipv4.PacketConn
	p6   *ipv6.PacketConn
}

// listen opens the socket, bound to bind.
func (c *icmpConn) listen(listen func(netip.Addr) (*net.IPConn, error), bind netip.Addr) error {
	conn, err := listen(bind)
	c.sys.conn = conn
	return err
}

func (c *icmpConn) close() error { return c.sys.conn.Close() }

// setup asks the kernel to pass echo replies only, where it can: ICMPv6
// filters are standard (RFC 3542, Linux and the BSDs) but not set on
// OpenBSD (kernelICMP6Filter). Without one, read drops the other
// messages itself.
func (c *icmpConn) setup() {
	var err error
	if c.key.v6 {
		c.sys.p6 = ipv6.NewPacketConn(c.sys.conn)
		if kernelICMP6Filter {
			var f ipv6.ICMPFilter
			f.SetAll(true)
			f.Accept(ipv6.ICMPTypeEchoReply)
			err = c.sys.p6.SetICMPFilter(&f)
		} else {
			err = errNoICMP6Filter
		}
	} else {
		c.sys.p4 = ipv4.NewPacketConn(c.sys.conn)
		var f ipv4.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv4.ICMPTypeEchoReply)
		err = c.sys.p4.SetICMPFilter(&f)
	}
	if err != nil {
		c.t.Log.Debug("probe: no kernel ICMP filter; filtering in the reader", "bound", c.key.bound, "v6", c.key.v6, "err", err)
	}
}

// start starts the socket's receive goroutine.
func (c *icmpConn) start() { c.wg.Go(c.read) }

// read passes every echo reply carrying the transport's token to the
// endpoints of its socket until the socket is closed.
func (c *icmpConn) read() {
	var readBatch func([]ipv4.Message, int) (int, error)
	if c.key.v6 {
		readBatch = c.sys.p6.ReadBatch
	} else {
		readBatch = c.sys.p4.ReadBatch
	}
	ms := make([]ipv4.Message, readBatchSize)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 512)}
	}
	errs := 0
	for {
		n, err := readBatch(ms, 0)
		at := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errs++; errs%1000 == 1 {
				c.t.Log.Warn("probe: reading ICMP", "bound", c.key.bound, "v6", c.key.v6, "err", err, "errors", errs)
			}
			continue
		}
		c.emu.RLock()
		for _, m := range ms[:n] {
			from, ok := m.Addr.(*net.IPAddr)
			if !ok {
				continue
			}
			a, ok := netip.AddrFromSlice(from.IP)
			if !ok {
				continue
			}
			c.deliver(m.Buffers[0][:m.N], a.Unmap().WithZone(from.Zone), netip.Addr{}, at)
		}
		c.emu.RUnlock()
	}
}

// kernelICMP6Filter is false outside Linux: the reader filters ICMPv6 itself.
// On OpenBSD, pledge(2) kills a process that sets any socket option at
// level IPPROTO_ICMPV6 — ICMP6_FILTER included — whatever its promises:
// pledge_sockopt() in sys/kern/kern_pledge.c (rev. 1.247, 2019/01/06,
// openbsd/src 94895ce9) has `case IPPROTO_ICMPV6: break;` and falls through
// to pledge_fail(EPERM). Leaving the filter out keeps a reopened socket
// (after send failures, or a probe restart on SIGHUP) within "inet".
const kernelICMP6Filter = false

// errNoICMP6Filter says why the ICMPv6 socket has no kernel filter.
var errNoICMP6Filter = errors.New("ICMP6_FILTER not set here: pledge(2) forbids IPPROTO_ICMPV6 options")
