package probe

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ICMP is the real Transport: privileged (raw socket) ICMP echo, one
// socket per source address and IP version, bound to that address. See the
// package documentation for why this is not pro-bing.
type ICMP struct {
	// Netns, when set, is the path of a network namespace (Linux) in which
	// the sockets are opened; see the package documentation.
	Netns string
	Log   *slog.Logger

	once  sync.Once
	token [8]byte // in every request's payload: replies to other pingers are not ours
}

// echo message layout: type, code, checksum, identifier, 16-bit sequence
// number, then the payload: the transport's token and the 64-bit sequence
// number.
const (
	echoHeader = 8
	echoLen    = echoHeader + 16
)

// Open implements Transport.
func (t *ICMP) Open(src Source, recv func(Reply)) (Endpoint, error) {
	t.once.Do(func() { _, _ = rand.Read(t.token[:]) })
	var (
		conn *net.IPConn
		addr netip.Addr
	)
	err := inNetns(t.Netns, t.Log, func() error {
		a, err := sourceAddr(src)
		if err != nil {
			return err
		}
		network := "ip4:icmp"
		if src.V6 {
			network = "ip6:ipv6-icmp"
		}
		c, err := net.ListenIP(network, &net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()})
		if err != nil {
			if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
				err = fmt.Errorf("%w (%v)", ErrNoPrivilege, err)
			}
			return fmt.Errorf("link %s: ICMP socket on %v: %w", src.Link, a, err)
		}
		conn, addr = c, a
		return nil
	})
	if err != nil {
		return nil, err
	}
	e := &icmpEndpoint{t: t, conn: conn, src: addr, v6: src.V6, recv: recv}
	e.filter()
	e.wg.Go(e.read)
	return e, nil
}

// inNetns runs f with the calling goroutine's thread in the network
// namespace bound at path ("" runs f where it is). It runs f in a goroutine
// of its own and waits for it: should the way back fail, that thread stays
// locked to it and dies with it, so nothing else runs in the wrong
// namespace.
func inNetns(path string, log *slog.Logger, f func() error) error {
	if path == "" {
		return f()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := enterNetns(path)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		err = f()
		if berr := back(); berr != nil {
			log.Error("probe: cannot leave network namespace", "netns", path, "err", berr)
		} else {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

type icmpEndpoint struct {
	t    *ICMP
	conn *net.IPConn
	src  netip.Addr
	v6   bool
	recv func(Reply)
	wg   sync.WaitGroup
}

// filter asks the kernel to pass echo replies only, where it can: ICMPv6
// filters are standard (RFC 3542, Linux and the BSDs), the ICMPv4 one is
// Linux's. Without one, read drops the other messages itself.
func (e *icmpEndpoint) filter() {
	var err error
	if e.v6 {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		err = ipv6.NewPacketConn(e.conn).SetICMPFilter(&f)
	} else {
		var f ipv4.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv4.ICMPTypeEchoReply)
		err = ipv4.NewPacketConn(e.conn).SetICMPFilter(&f)
	}
	if err != nil {
		e.t.Log.Debug("probe: no kernel ICMP filter; filtering in the reader", "source", e.src, "err", err)
	}
}

// Send implements Endpoint.
func (e *icmpEndpoint) Send(dst netip.Addr, id uint16, seq uint64) error {
	var b [echoLen]byte
	b[0] = byte(ipv4.ICMPTypeEcho)
	if e.v6 {
		b[0] = byte(ipv6.ICMPTypeEchoRequest)
	}
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], uint16(seq))
	copy(b[8:], e.t.token[:])
	binary.BigEndian.PutUint64(b[16:], seq)
	if !e.v6 { // the kernel computes the ICMPv6 checksum
		binary.BigEndian.PutUint16(b[2:], checksum(b[:]))
	}
	_, err := e.conn.WriteToIP(b[:], &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()})
	return err
}

// read passes every echo reply carrying the transport's token to recv
// until the socket is closed. It reads up to 8 queued messages per system
// call where the system can (recvmmsg on Linux; one elsewhere): a link's
// targets are probed together, so their replies arrive together.
func (e *icmpEndpoint) read() {
	readBatch := ipv4.NewPacketConn(e.conn).ReadBatch
	if e.v6 {
		readBatch = ipv6.NewPacketConn(e.conn).ReadBatch
	}
	ms := make([]ipv4.Message, 8) // = ipv6.Message
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 1500)}
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
				e.t.Log.Warn("probe: reading ICMP", "source", e.src, "err", err, "errors", errs)
			}
			continue
		}
		for _, m := range ms[:n] {
			from, ok := m.Addr.(*net.IPAddr)
			if !ok {
				continue
			}
			if r, ok := e.parse(m.Buffers[0][:m.N], from, at); ok {
				e.recv(r)
			}
		}
	}
}

// parse returns the echo reply in b, if it is one of ours. A raw IPv4
// socket hands over the IP header too (ICMP starts with a type, never with
// version 4).
func (e *icmpEndpoint) parse(b []byte, from *net.IPAddr, at time.Time) (Reply, bool) {
	want := byte(ipv4.ICMPTypeEchoReply)
	if e.v6 {
		want = byte(ipv6.ICMPTypeEchoReply)
	} else if len(b) > 0 && b[0]>>4 == 4 {
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || ihl > len(b) {
			return Reply{}, false
		}
		b = b[ihl:]
	}
	if len(b) < echoLen || b[0] != want || b[1] != 0 || [8]byte(b[8:16]) != e.t.token {
		return Reply{}, false
	}
	seq := binary.BigEndian.Uint64(b[16:])
	if uint16(seq) != binary.BigEndian.Uint16(b[6:]) {
		return Reply{}, false
	}
	a, ok := netip.AddrFromSlice(from.IP)
	if !ok {
		return Reply{}, false
	}
	return Reply{From: a.Unmap().WithZone(from.Zone), ID: binary.BigEndian.Uint16(b[4:]), Seq: seq, At: at}, true
}

// Close implements Endpoint.
func (e *icmpEndpoint) Close() error {
	err := e.conn.Close()
	e.wg.Wait()
	return err
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// sourceAddr is src.Addr, else the first address of src.Interface of the
// IP version (global before link-local, link-local only when a link-local
// target needs it).
func sourceAddr(src Source) (netip.Addr, error) {
	if src.Addr.IsValid() {
		return src.Addr, nil
	}
	ifi, err := net.InterfaceByName(src.Interface)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("link %s: source address: %w", src.Link, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("link %s: addresses of %s: %w", src.Link, src.Interface, err)
	}
	var linkLocal netip.Addr
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		if ip.Is4() == src.V6 {
			continue
		}
		if ip.IsLinkLocalUnicast() {
			if !linkLocal.IsValid() {
				linkLocal = ip.WithZone(src.Interface)
			}
			continue
		}
		return ip, nil
	}
	if linkLocal.IsValid() && src.LinkLocal {
		return linkLocal, nil
	}
	v := "IPv4"
	if src.V6 {
		v = "IPv6"
	}
	return netip.Addr{}, fmt.Errorf("link %s: interface %s has no %s address to probe from (set nodes.<node>.probe_source.%s)", src.Link, src.Interface, v, src.Link)
}
