package traffic

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Config is what a Client sends.
type Config struct {
	Server   netip.Addr // the internet host
	UDPPort  int        // the server's UDP port
	Flows    int        // concurrent UDP streams (0: none)
	Rate     int        // datagrams per second per stream (default 100)
	TCPPorts []int      // the server's TCP ports: new connections to each
	ConnRate int        // new connections per second per TCP port (0: none)
	// ConnTimeout bounds one connection attempt, connect to greeting
	// (default 1 s).
	ConnTimeout time.Duration
	// Drain is how long Run waits for the last echoes after it stops
	// sending (default 500 ms).
	Drain time.Duration
	// Streams long-lived TCP connections to StreamPort (the server's
	// echo port), each writing StreamRate records per second (default
	// 100) from start to end (stream.go).
	Streams, StreamPort, StreamRate int
}

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("traffic: invalid client config")

func (c *Config) check() error {
	var errs []error
	if !c.Server.IsValid() {
		errs = append(errs, errors.New("server: not an IP address"))
	}
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.ConnTimeout == 0 {
		c.ConnTimeout = time.Second
	}
	if c.Drain == 0 {
		c.Drain = 500 * time.Millisecond
	}
	if c.StreamRate == 0 {
		c.StreamRate = 100
	}
	if c.Streams < 0 || c.Streams > 1000 {
		errs = append(errs, fmt.Errorf("streams: %d: want 0..1000", c.Streams))
	}
	if c.StreamRate < 1 || c.StreamRate > 10000 {
		errs = append(errs, fmt.Errorf("stream rate: %d: want 1..10000 per second", c.StreamRate))
	}
	if c.Streams > 0 && (c.StreamPort < 1 || c.StreamPort > 65535) {
		errs = append(errs, fmt.Errorf("stream port: %d: want 1..65535", c.StreamPort))
	}
	if c.Flows < 0 || c.Flows > 1000 {
		errs = append(errs, fmt.Errorf("flows: %d: want 0..1000", c.Flows))
	}
	if c.Rate < 1 || c.Rate > 10000 {
		errs = append(errs, fmt.Errorf("rate: %d: want 1..10000 per second", c.Rate))
	}
	if c.Flows > 0 && (c.UDPPort < 1 || c.UDPPort > 65535) {
		errs = append(errs, fmt.Errorf("udp port: %d: want 1..65535", c.UDPPort))
	}
	for _, p := range c.TCPPorts {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("tcp port: %d: want 1..65535", p))
		}
	}
	if c.ConnRate < 0 || c.ConnRate > 1000 {
		errs = append(errs, fmt.Errorf("conn rate: %d: want 0..1000 per second", c.ConnRate))
	}
	if c.ConnTimeout < 0 || c.Drain < 0 {
		errs = append(errs, errors.New("conn timeout and drain must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Client sends the flows and connections of a Config and accounts them.
type Client struct {
	cfg   Config
	mu    sync.Mutex
	flows []*Flow
	ports []int // local port per flow
	conns []Conn
	last  map[string]ConnISP
	// streams: the long-lived TCP connections (stream.go)
	streams []*Stream
}

// NewClient checks cfg and returns a client for it.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, last: map[string]ConnISP{}}, nil
}

// Run sends until ctx ends, then stops sending, waits Drain for the last
// echoes and for the connection attempts in flight, and returns the
// account. It fails only when a socket cannot be opened.
func (c *Client) Run(ctx context.Context) (Report, error) {
	interval := time.Second / time.Duration(c.cfg.Rate)
	server := netip.AddrPortFrom(c.cfg.Server, uint16(c.cfg.UDPPort))
	var socks []*net.UDPConn
	for i := range c.cfg.Flows {
		s, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
		if err != nil {
			for _, s := range socks {
				s.Close()
			}
			return Report{}, fmt.Errorf("traffic: flow %d: %w", i, err)
		}
		socks = append(socks, s)
		c.mu.Lock()
		c.flows = append(c.flows, NewFlow(uint32(i), interval))
		c.ports = append(c.ports, s.LocalAddr().(*net.UDPAddr).Port)
		c.mu.Unlock()
	}
	rep := Report{Start: time.Now()}
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	var senders, receivers sync.WaitGroup
	for i, s := range socks {
		receivers.Go(func() { c.receive(s, c.flows[i]) })
		// Stagger the streams over one interval.
		offset := interval * time.Duration(i) / time.Duration(len(socks))
		senders.Go(func() { c.send(sendCtx, s, c.flows[i], offset, interval) })
	}
	if c.cfg.Streams > 0 {
		receivers.Go(func() { c.runStreams(sendCtx, c.cfg.Drain) })
	}
	for _, port := range c.cfg.TCPPorts {
		if c.cfg.ConnRate > 0 {
			senders.Go(func() { c.open(sendCtx, port) })
		}
	}
	<-ctx.Done()
	stopSending()
	senders.Wait() // includes the connection attempts in flight
	rep.Stop = time.Now()
	drain := time.NewTimer(c.cfg.Drain)
	<-drain.C
	for _, s := range socks {
		s.Close()
	}
	receivers.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, f := range c.flows {
		fr := f.Report()
		fr.LocalPort = c.ports[i]
		rep.Flows = append(rep.Flows, fr)
	}
	rep.Conns = slices.Clone(c.conns)
	for _, st := range c.streams {
		rep.Streams = append(rep.Streams, st.Report(rep.Stop))
	}
	return rep, nil
}

// startAfter waits offset (flows and streams start spread over the
// interval); false when ctx ended first.
func startAfter(ctx context.Context, offset time.Duration) bool {
	first := time.NewTimer(offset)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-first.C:
		return true
	}
}

func (c *Client) send(ctx context.Context, s *net.UDPConn, f *Flow, offset, interval time.Duration) {
	if !startAfter(ctx, offset) {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	buf := make([]byte, 0, headerLen)
	for {
		now := time.Now()
		c.mu.Lock()
		seq := f.Sent(now)
		c.mu.Unlock()
		buf = AppendProbe(buf[:0], Probe{Flow: f.id, Seq: seq, Sent: now.UnixNano()})
		_, _ = s.Write(buf) // a failed send is a lost datagram
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Client) receive(s *net.UDPConn, f *Flow) {
	buf := make([]byte, 2048)
	for {
		n, err := s.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP errors on a connected socket: keep reading
		}
		now := time.Now()
		e, err := ParseEcho(buf[:n])
		if err != nil {
			continue
		}
		c.mu.Lock()
		f.Received(e, now)
		c.mu.Unlock()
	}
}

// open starts a connection attempt to port every 1/ConnRate until ctx
// ends, and waits for the attempts in flight.
func (c *Client) open(ctx context.Context, port int) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(time.Second / time.Duration(c.cfg.ConnRate))
	defer t.Stop()
	addr := netip.AddrPortFrom(c.cfg.Server, uint16(port)).String()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wg.Go(func() { c.record(dial(addr, port, c.cfg.ConnTimeout)) })
	}
}

func dial(addr string, port int, timeout time.Duration) Conn {
	start := time.Now()
	r := Conn{Port: port, Start: start}
	fail := func(err error) Conn {
		r.Duration, r.Err = time.Since(start), err.Error()
		return r
	}
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(start.Add(timeout))
	line, err := bufio.NewReaderSize(conn, 256).ReadString('\n')
	if err != nil {
		return fail(err)
	}
	isp, src, err := ParseGreeting(line)
	if err != nil {
		return fail(err)
	}
	r.Duration, r.OK, r.ISP, r.Source = time.Since(start), true, isp, src
	return r
}

func (c *Client) record(r Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conns = append(c.conns, r)
	k := strconv.Itoa(r.Port)
	if old, ok := c.last[k]; !ok || !r.Start.Before(old.Start) {
		c.last[k] = ConnISP{Start: r.Start, OK: r.OK, ISP: r.ISP}
	}
}

// Status returns the client's progress now.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Time: time.Now(), Conns: map[string]int{}, Last: maps.Clone(c.last)}
	for _, f := range c.flows {
		st.Flows = append(st.Flows, f.Progress())
	}
	for _, s := range c.streams {
		st.Streams = append(st.Streams, s.Progress())
	}
	for _, r := range c.conns {
		if r.OK {
			st.Conns[r.ISP]++
		} else {
			st.Fails++
		}
	}
	return st
}
