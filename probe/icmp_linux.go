package probe

import (
	"errors"
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

// The sockets are non-blocking, so sendmmsg and recvmmsg never block:
// they are made as raw system calls, without telling the Go scheduler.
// A system call through package syscall wakes the runtime's sysmon thread
// when the process was idle, which then polls every 20 µs for a
// millisecond or more; at a wake-up every few milliseconds that was a
// fifth of the prober's CPU time (docs/probing.md). A read that would
// block (EAGAIN) waits in the runtime's poller as any other.

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

	call     func(fd uintptr) bool // = sendmmsg, bound once
	from, to int                   // hdrs[from:to]
	sent     uintptr
	errno    unix.Errno
}

func (sb *sendBufs) sendmmsg(fd uintptr) bool {
	sb.sent, _, sb.errno = unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&sb.hdrs[sb.from])), uintptr(sb.to-sb.from), 0, 0, 0)
	return true
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
	if sb.call == nil {
		sb.call = sb.sendmmsg
	}
	for i := 0; i < n; {
		sb.from, sb.to = i, n
		err := c.rc.Write(sb.call)
		r, errno := sb.sent, sb.errno
		switch {
		case err != nil:
			for j := i; j < n; j++ {
				out[j].err = err
			}
			return
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

// read passes every echo reply carrying the transport's token to the
// endpoints of the address it was sent to, until the socket is closed.
// One recvmmsg takes up to readBatchSize queued replies.
func (c *icmpConn) read() {
	const bufLen = 512 // ours are 44 bytes (IPv4, with the header) or 24
	var (
		hdrs   = make([]mmsghdr, readBatchSize)
		iovs   = make([]unix.Iovec, readBatchSize)
		bufs   = make([]byte, readBatchSize*bufLen)
		names  = make([]unix.RawSockaddrInet6, readBatchSize)
		oobLen = 0
		oobs   []byte
	)
	if c.key.v6 && !c.key.bound.IsValid() {
		oobLen = unix.CmsgSpace(unix.SizeofInet6Pktinfo)
		oobs = make([]byte, readBatchSize*oobLen)
	}
	for i := range hdrs {
		iovs[i].Base = &bufs[i*bufLen]
		iovs[i].SetLen(bufLen)
		hdrs[i].hdr.Iov = &iovs[i]
		hdrs[i].hdr.SetIovlen(1)
		hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
	}
	var (
		n     int
		errno unix.Errno
	)
	recv := func(fd uintptr) bool {
		for i := range hdrs {
			h := &hdrs[i]
			h.hdr.Namelen = unix.SizeofSockaddrInet6
			h.hdr.Flags = 0
			h.n = 0
			if oobLen > 0 {
				h.hdr.Control = &oobs[i*oobLen]
				h.hdr.SetControllen(oobLen)
			}
		}
		for {
			r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait in the poller
			}
			n, errno = int(r), e
			return true
		}
	}
	errs := 0
	for {
		err := c.rc.Read(recv)
		at := time.Now()
		if err == nil && errno != 0 {
			err = os.NewSyscallError("recvmmsg", errno)
		}
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
		for i := range n {
			h := &hdrs[i]
			b := bufs[i*bufLen : i*bufLen+min(int(h.n), bufLen)]
			var from, dst netip.Addr
			if c.key.v6 {
				from = netip.AddrFrom16(names[i].Addr)
				if oobLen > 0 {
					dst = pktinfoDst(oobs[i*oobLen : i*oobLen+min(int(h.hdr.Controllen), oobLen)])
				}
			} else {
				from = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(&names[i])).Addr)
			}
			c.deliver(b, from, dst, at)
		}
		c.emu.RUnlock()
	}
}

// pktinfoDst is the destination address in an IPV6_PKTINFO control
// message.
func pktinfoDst(oob []byte) netip.Addr {
	ms, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}
	}
	for _, m := range ms {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 16 {
			return netip.AddrFrom16([16]byte(m.Data[:16]))
		}
	}
	return netip.Addr{}
}

// kernelICMP6Filter: Linux filters ICMPv6 in the kernel (ICMP6_FILTER).
const kernelICMP6Filter = true

// errNoICMP6Filter is never returned on Linux.
var errNoICMP6Filter error
