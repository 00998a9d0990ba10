package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// shareSockets: on Linux one raw socket per IP version serves every
// source, each request naming its source in an IP_PKTINFO (IPv4) or
// IPV6_PKTINFO (IPv6) control message.
const shareSockets = true

// srcControl is the control message that sends a request from src (out
// of interface ifindex, for a link-local source).
func srcControl(src netip.Addr, ifindex int, v6 bool) []byte {
	if v6 {
		cm := ipv6.ControlMessage{Src: src.AsSlice(), IfIndex: ifindex}
		return cm.Marshal()
	}
	cm := ipv4.ControlMessage{Src: src.AsSlice(), IfIndex: ifindex}
	return cm.Marshal()
}

// The shared sockets are made with socket(2), not package net: the Go
// runtime's network poller never sees them. Nothing waits for a reply
// (Poll reads them), and a socket registered with the
// poller would wake the thread that sleeps in epoll_wait(2) for the
// runtime's timers at every reply, for nothing. sendmmsg and recvmmsg
// are MSG_DONTWAIT, so they never block: they are made as raw system
// calls, without telling the Go scheduler. A system call through package
// syscall wakes the runtime's sysmon thread when the process was idle,
// which then polls every 20 µs for a millisecond or more; at a wake-up
// every few milliseconds that was a fifth of the prober's CPU time
// (docs/probing.md).

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// sendBufs are the buffers of one sendmmsg and its call's arguments and
// results, reused: sending allocates nothing.
type sendBufs struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // or RawSockaddrInet4, which is smaller

	from, to int // hdrs[from:to]
	sent     uintptr
	errno    unix.Errno
}

// sendmmsg sends hdrs[from:to]; a full socket buffer (EAGAIN) fails the
// request, as any send error does, rather than wait.
func (sb *sendBufs) sendmmsg(fd uintptr) {
	sb.sent, _, sb.errno = unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&sb.hdrs[sb.from])), uintptr(sb.to-sb.from), unix.MSG_DONTWAIT, 0, 0)
}

// write sends out with as few sendmmsg calls as it takes: one, unless a
// request fails (its err is set and the rest go on).
func (c *icmpConn) write(sb *sendBufs, out []outMsg) {
	n := len(out)
	if len(sb.hdrs) < n {
		sb.hdrs = make([]mmsghdr, n)
		sb.iovs = make([]unix.Iovec, n)
		sb.names = make([]unix.RawSockaddrInet6, n)
	}
	for i, o := range out {
		h := &sb.hdrs[i]
		*h = mmsghdr{}
		sb.iovs[i] = unix.Iovec{Base: &o.pkt[0]}
		sb.iovs[i].SetLen(len(o.pkt))
		h.hdr.Iov = &sb.iovs[i]
		h.hdr.SetIovlen(1)
		sa := &sb.names[i]
		if o.dst.Is4() {
			*(*unix.RawSockaddrInet4)(unsafe.Pointer(sa)) = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: o.dst.As4()}
			h.hdr.Namelen = unix.SizeofSockaddrInet4
		} else {
			*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: o.dst.As16()}
			if z := o.dst.Zone(); z != "" {
				if ifi, err := net.InterfaceByName(z); err == nil {
					sa.Scope_id = uint32(ifi.Index)
				}
			}
			h.hdr.Namelen = unix.SizeofSockaddrInet6
		}
		h.hdr.Name = (*byte)(unsafe.Pointer(sa))
		if len(o.oob) > 0 {
			h.hdr.Control = &o.oob[0]
			h.hdr.SetControllen(len(o.oob))
		}
	}
	for i := 0; i < n; {
		if c.sys.fd < 0 {
			for j := i; j < n; j++ {
				out[j].err = net.ErrClosed
			}
			return
		}
		sb.from, sb.to = i, n
		sb.sendmmsg(uintptr(c.sys.fd))
		r, errno := sb.sent, sb.errno
		switch {
		case errno == unix.EINTR:
		case errno != 0:
			out[i].err = os.NewSyscallError("sendmmsg", errno)
			i++
		case r == 0:
			out[i].err = errors.New("sendmmsg: nothing sent")
			i++
		default:
			i += int(r)
		}
	}
}

// On Linux nothing waits for replies. The sockets are read when the
// prober's scheduler wakes up anyway (Poll, before it releases deadlines
// and sends), and every reply carries the kernel's receive time
// (SO_TIMESTAMPNS), so reading it late changes no RTT and no verdict.
// That saves the receive goroutine's wake-ups and its trips through the
// Go scheduler (docs/probing.md, "Third session").

// Poll implements Poller (Linux only: elsewhere each socket's receive
// goroutine delivers its replies as they come, and ICMP is no Poller). It
// reads every socket's queued replies and hands them to their endpoints'
// recv before it returns, each with the kernel's receive time.
var _ Poller = (*ICMP)(nil)

func (t *ICMP) Poll(now time.Time) {
	t.pollMu.Lock()
	defer t.pollMu.Unlock()
	t.mu.Lock()
	cs := t.pollConns[:0]
	for _, c := range t.conns {
		cs = append(cs, c)
	}
	t.pollConns = cs
	t.mu.Unlock()
	for i, c := range cs {
		c.poll(now, t.lastPoll)
		cs[i] = nil
	}
	t.lastPoll = now
}

// readBufs are a socket's receive buffers, reused: reading allocates
// nothing.
type readBufs struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	bufs  []byte
	names []unix.RawSockaddrInet6
	oobs  []byte
	n     int
	errno unix.Errno
}

const (
	socketBuffer = 4 << 20
	readBufLen   = 512 // ours are 44 bytes (IPv4, with the header) or 24
	// readOOBLen holds a timestamp and an IPV6_PKTINFO.
	readOOBLen = 32 + 40
)

// connSys is the socket: a raw socket(2) outside the Go runtime's
// poller, and Poll's buffers.
type connSys struct {
	fd   int // -1 once closed; under t.sendMu and t.pollMu
	rb   *readBufs
	errs int // read errors, under t.pollMu
}

// listen opens the shared socket of the IP version (bind is the
// unspecified address: the socket is not bound).
func (c *icmpConn) listen(_ func(netip.Addr) (*net.IPConn, error), _ netip.Addr) error {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if c.key.v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		err = os.NewSyscallError("socket", err)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			err = fmt.Errorf("%w (%v)", ErrNoPrivilege, err)
		}
		return fmt.Errorf("shared ICMP socket (IPv6: %v): %w", c.key.v6, err)
	}
	c.sys.fd = fd
	return nil
}

// setup asks the kernel to pass echo replies only (ICMP_FILTER,
// ICMPV6_FILTER: a set bit blocks a type), for the destination of each
// IPv6 reply (IPV6_PKTINFO: it tells the endpoints apart; an IPv4 reply's
// is in its IP header) and for every reply's receive time
// (SO_TIMESTAMPNS), and sets up Poll's buffers.
func (c *icmpConn) setup() {
	fd := c.sys.fd
	var err error
	if c.key.v6 {
		var f unix.ICMPv6Filter
		for i := range f.Data {
			f.Data[i] = ^uint32(0)
		}
		reply := uint32(ipv6.ICMPTypeEchoReply)
		f.Data[reply>>5] &^= 1 << (reply & 31)
		err = unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, &f)
		if perr := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); perr != nil {
			c.t.Log.Warn("probe: no IPV6_PKTINFO on the shared ICMPv6 socket", "err", perr)
		}
	} else {
		block := ^(uint32(1) << uint(ipv4.ICMPTypeEchoReply))
		err = unix.SetsockoptInt(fd, unix.SOL_RAW, unix.ICMP_FILTER, int(int32(block)))
		// Don't fragment (a request is 44 bytes): an unconnected socket's
		// packet without DF gets its IP ID from the kernel's hashed,
		// randomised generator (__ip_select_ident, 5% of the prober's
		// samples in perf), one with DF gets 0.
		if derr := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE); derr != nil {
			c.t.Log.Debug("probe: IP_MTU_DISCOVER", "err", derr)
		}
	}
	if err != nil {
		c.t.Log.Debug("probe: no kernel ICMP filter; filtering in the reader", "v6", c.key.v6, "err", err)
	}
	// Replies wait in the receive buffer until the next wake-up and a
	// wake-up's requests leave at once (MSG_DONTWAIT: a full send buffer
	// fails them): room for thousands of each, where root may.
	for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], socketBuffer) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], socketBuffer) // capped by net.core.[rw]mem_max
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		c.t.Log.Warn("probe: no kernel receive times (SO_TIMESTAMPNS): RTTs include the wait for the next wake-up", "err", err)
	}
	rb := &readBufs{
		hdrs:  make([]mmsghdr, readBatchSize),
		iovs:  make([]unix.Iovec, readBatchSize),
		bufs:  make([]byte, readBatchSize*readBufLen),
		names: make([]unix.RawSockaddrInet6, readBatchSize),
		oobs:  make([]byte, readBatchSize*readOOBLen),
	}
	for i := range rb.hdrs {
		rb.iovs[i].Base = &rb.bufs[i*readBufLen]
		rb.iovs[i].SetLen(readBufLen)
		rb.hdrs[i].hdr.Iov = &rb.iovs[i]
		rb.hdrs[i].hdr.SetIovlen(1)
		rb.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&rb.names[i]))
	}
	c.sys.rb = rb
}

// start does nothing on Linux: Poll reads.
func (c *icmpConn) start() {}

// close closes the socket once no Poll or send is using it.
func (c *icmpConn) close() error {
	c.t.pollMu.Lock()
	defer c.t.pollMu.Unlock()
	c.t.sendMu.Lock()
	defer c.t.sendMu.Unlock()
	fd := c.sys.fd
	c.sys.fd = -1
	return os.NewSyscallError("close", unix.Close(fd))
}

// recvmmsg takes up to readBatchSize queued messages without waiting.
func (rb *readBufs) recvmmsg(fd uintptr) {
	for i := range rb.hdrs {
		h := &rb.hdrs[i]
		h.hdr.Namelen = unix.SizeofSockaddrInet6
		h.hdr.Flags = 0
		h.n = 0
		h.hdr.Control = &rb.oobs[i*readOOBLen]
		h.hdr.SetControllen(readOOBLen)
	}
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&rb.hdrs[0])), uintptr(len(rb.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		rb.n, rb.errno = int(r), e
		return
	}
}

// poll passes every queued echo reply carrying the transport's token to
// the endpoints of the address it was sent to, and returns when the
// socket's queue is empty. now is the time of the call; last that of the
// previous one (a reply's receive time is taken to lie between them).
func (c *icmpConn) poll(now, last time.Time) {
	rb := c.sys.rb
	wall := now.UnixNano()
	maxAge := now.Sub(last)
	for {
		if c.sys.fd < 0 {
			return
		}
		rb.recvmmsg(uintptr(c.sys.fd))
		if rb.errno != 0 {
			if rb.errno != unix.EAGAIN {
				if c.sys.errs++; c.sys.errs%1000 == 1 {
					c.t.Log.Warn("probe: reading ICMP", "v6", c.key.v6,
						"err", os.NewSyscallError("recvmmsg", rb.errno), "errors", c.sys.errs)
				}
			}
			return
		}
		c.emu.RLock()
		for i := range rb.n {
			h := &rb.hdrs[i]
			b := rb.bufs[i*readBufLen : i*readBufLen+min(int(h.n), readBufLen)]
			ts, dst := parseOOB(rb.oobs[i*readOOBLen : i*readOOBLen+min(int(h.hdr.Controllen), readOOBLen)])
			at := now
			if ts != 0 {
				// The receive time on the monotonic clock: its age on the
				// wall clock, within [0, since the last poll].
				at = now.Add(-min(max(time.Duration(wall-ts), 0), maxAge))
			}
			var from netip.Addr
			if c.key.v6 {
				from = netip.AddrFrom16(rb.names[i].Addr)
			} else {
				from = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(&rb.names[i])).Addr)
			}
			c.deliver(b, from, dst, at)
		}
		c.emu.RUnlock()
		if rb.n < len(rb.hdrs) {
			return
		}
	}
}

// parseOOB returns the receive time (SO_TIMESTAMPNS, ns since the epoch;
// 0 when absent) and the destination (IPV6_PKTINFO) in a message's control
// data, without allocating.
func parseOOB(oob []byte) (ts int64, dst netip.Addr) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			break
		}
		data := oob[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SO_TIMESTAMPNS && len(data) >= 16:
			t := (*unix.Timespec)(unsafe.Pointer(&data[0]))
			ts = t.Nano()
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= 16:
			dst = netip.AddrFrom16([16]byte(data[:16]))
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return ts, dst
}
