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
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ICMP is the real Transport: privileged (raw socket) ICMP echo. On Linux
// it opens one socket per IP version, shared by every source: each request
// carries its source address in an IP_PKTINFO/IPV6_PKTINFO control message
// and a prober's requests due together leave in one sendmmsg(2). Elsewhere
// (OpenBSD) it opens one socket per source address and IP version, bound to
// that address. See the package documentation for why this is not
// pro-bing.
type ICMP struct {
	// Netns, when set, is the path of a network namespace (Linux) in which
	// the sockets are opened; see the package documentation.
	Netns string
	Log   *slog.Logger

	once  sync.Once
	token [8]byte // in every request's payload: replies to other pingers are not ours

	mu    sync.Mutex // guards conns and their refs
	conns map[connKey]*icmpConn

	pollMu    sync.Mutex // one Poll at a time (Linux)
	lastPoll  time.Time
	pollConns []*icmpConn

	sendMu sync.Mutex // guards the send buffers below
	pkts   [][echoLen]byte
	out    []outMsg
	idx    []int
	sys    sendBufs // the system's
}

// echo message layout: type, code, checksum, identifier, 16-bit sequence
// number, then the payload: the transport's token and the 64-bit sequence
// number.
const (
	echoHeader = 8
	echoLen    = echoHeader + 16
)

// connKey names a socket: its IP version and, where sockets are not
// shared, the address it is bound to.
type connKey struct {
	v6    bool
	bound netip.Addr
}

// icmpConn is one raw socket and its receive goroutine, shared by the
// endpoints of its key.
type icmpConn struct {
	t    *ICMP
	key  connKey
	sys  connSys // the socket, as the system has it (icmp_linux.go, icmp_other.go)
	refs int     // under t.mu
	wg   sync.WaitGroup

	emu sync.RWMutex // held for reading while replies are handed out
	eps map[netip.Addr][]*icmpEndpoint
}

// icmpEndpoint is one source: a handle on its socket.
type icmpEndpoint struct {
	t    *ICMP
	c    *icmpConn
	src  netip.Addr
	v6   bool
	oob  []byte // the source as a control message, where the socket is shared
	recv func(Reply)
	once sync.Once
}

// Open implements Transport.
func (t *ICMP) Open(src Source, recv func(Reply)) (Endpoint, error) {
	t.once.Do(func() { _, _ = rand.Read(t.token[:]) })
	t.mu.Lock()
	defer t.mu.Unlock()
	var (
		addr netip.Addr
		oob  []byte
		c    *icmpConn
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
		key := connKey{v6: src.V6}
		if !shareSockets {
			key.bound = a
		}
		listen := func(a netip.Addr) (*net.IPConn, error) {
			c, err := net.ListenIP(network, &net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()})
			if err != nil {
				if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
					err = fmt.Errorf("%w (%v)", ErrNoPrivilege, err)
				}
				return nil, fmt.Errorf("link %s: ICMP socket on %v: %w", src.Link, a, err)
			}
			return c, nil
		}
		if shareSockets {
			// The shared socket is not bound: check that the source can
			// be bound to, as a socket of its own would have been.
			probe, err := listen(a)
			if err != nil {
				return err
			}
			probe.Close()
			ifindex := 0
			if a.Zone() != "" {
				ifi, err := net.InterfaceByName(a.Zone())
				if err != nil {
					return fmt.Errorf("link %s: source %v: %w", src.Link, a, err)
				}
				ifindex = ifi.Index
			}
			oob = srcControl(a, ifindex, src.V6)
		}
		addr, c = a, t.conns[key]
		if c != nil {
			return nil
		}
		bind := key.bound
		if !bind.IsValid() {
			bind = netip.IPv4Unspecified()
			if src.V6 {
				bind = netip.IPv6Unspecified()
			}
		}
		c = &icmpConn{t: t, key: key, eps: map[netip.Addr][]*icmpEndpoint{}}
		return c.listen(listen, bind)
	})
	if err != nil {
		return nil, err
	}
	if t.conns[c.key] != c {
		if t.conns == nil {
			t.conns = map[connKey]*icmpConn{}
		}
		t.conns[c.key] = c
		c.setup()
		c.start()
	}
	c.refs++
	e := &icmpEndpoint{t: t, c: c, src: addr, v6: src.V6, oob: oob, recv: recv}
	k := addr.WithZone("")
	c.emu.Lock()
	c.eps[k] = append(c.eps[k], e)
	c.emu.Unlock()
	return e, nil
}

// Sockets is how many sockets the transport has open.
func (t *ICMP) Sockets() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
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

// Send implements Endpoint.
func (e *icmpEndpoint) Send(dst netip.Addr, id uint16, seq uint64) error {
	rs := [1]Request{{EP: e, Dst: dst, ID: id, Seq: seq}}
	e.t.SendBatch(rs[:])
	return rs[0].Err
}

// SendBatch implements BatchSender: the requests of each socket leave in
// as few system calls as the system allows (one sendmmsg on Linux, one
// sendmsg each elsewhere), without allocating once the buffers have grown
// to the largest batch.
func (t *ICMP) SendBatch(rs []Request) {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	if len(t.pkts) < len(rs) {
		t.pkts = make([][echoLen]byte, len(rs))
		t.out = make([]outMsg, 0, len(rs))
		t.idx = make([]int, 0, len(rs))
	}
	var conns [4]*icmpConn // the distinct sockets of this batch, usually one or two
	cs := conns[:0]
	for i := range rs {
		e, ok := rs[i].EP.(*icmpEndpoint)
		if !ok {
			rs[i].Err = rs[i].EP.Send(rs[i].Dst, rs[i].ID, rs[i].Seq)
			continue
		}
		if !slices.Contains(cs, e.c) {
			cs = append(cs, e.c)
		}
	}
	for _, c := range cs {
		out, idx := t.out[:0], t.idx[:0]
		for i := range rs {
			e, ok := rs[i].EP.(*icmpEndpoint)
			if !ok || e.c != c {
				continue
			}
			pkt := &t.pkts[len(out)]
			t.echo(pkt, e.v6, rs[i].ID, rs[i].Seq)
			out = append(out, outMsg{pkt: pkt[:], dst: rs[i].Dst, oob: e.oob})
			idx = append(idx, i)
		}
		c.write(&t.sys, out)
		for j, o := range out {
			rs[idx[j]].Err = o.err
			out[j] = outMsg{}
		}
	}
}

// outMsg is one request for a socket's write.
type outMsg struct {
	pkt []byte
	dst netip.Addr
	oob []byte // the source, where the socket is shared
	err error  // set by write
}

// echo writes echo request seq with identifier id into b.
func (t *ICMP) echo(b *[echoLen]byte, v6 bool, id uint16, seq uint64) {
	*b = [echoLen]byte{}
	b[0] = byte(ipv4.ICMPTypeEcho)
	if v6 {
		b[0] = byte(ipv6.ICMPTypeEchoRequest)
	}
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], uint16(seq))
	copy(b[8:], t.token[:])
	binary.BigEndian.PutUint64(b[16:], seq)
	if !v6 { // the kernel computes the ICMPv6 checksum
		binary.BigEndian.PutUint16(b[2:], checksum(b[:]))
	}
}

// readBatchSize is how many messages one read takes at most: the
// replies to a wake-up's requests arrive together.
const readBatchSize = 64

// deliver hands reply b (an echo reply, with the IPv4 header on an IPv4
// socket), received from from and addressed to dst, to the endpoints of
// dst, if it is one of ours. On a bound socket dst is its address; on a
// shared one the IP header's destination (IPv4) or IPV6_PKTINFO's (IPv6).
// c.emu is held for reading.
func (c *icmpConn) deliver(b []byte, from, dst netip.Addr, at time.Time) {
	if c.key.bound.IsValid() {
		dst = c.key.bound
	} else if !c.key.v6 && len(b) >= 20 && b[0]>>4 == 4 {
		dst = netip.AddrFrom4([4]byte(b[16:20]))
	}
	eps := c.eps[dst.WithZone("")]
	if len(eps) == 0 {
		return
	}
	if r, ok := eps[0].parse(b, from, at); ok {
		for _, e := range eps {
			e.recv(r)
		}
	}
}

// parse returns the echo reply in b, if it is one of ours. A raw IPv4
// socket hands over the IP header too (ICMP starts with a type, never with
// version 4).
func (e *icmpEndpoint) parse(b []byte, from netip.Addr, at time.Time) (Reply, bool) {
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
	if !from.IsValid() {
		return Reply{}, false
	}
	return Reply{From: from.Unmap(), ID: binary.BigEndian.Uint16(b[4:]), Seq: seq, At: at}, true
}

// Close implements Endpoint: it waits until the endpoint's recv is no
// longer called, and closes the socket (waiting for its receive
// goroutine) when it was the socket's last endpoint.
func (e *icmpEndpoint) Close() error {
	var err error
	e.once.Do(func() {
		c, t := e.c, e.t
		k := e.src.WithZone("")
		c.emu.Lock()
		c.eps[k] = slices.DeleteFunc(c.eps[k], func(x *icmpEndpoint) bool { return x == e })
		if len(c.eps[k]) == 0 {
			delete(c.eps, k)
		}
		c.emu.Unlock()
		t.mu.Lock()
		c.refs--
		last := c.refs == 0
		if last {
			delete(t.conns, c.key)
		}
		t.mu.Unlock()
		if last {
			err = c.close()
			c.wg.Wait()
		}
	})
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
