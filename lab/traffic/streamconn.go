package traffic

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ServeStreams greets every connection on ln (identity, source) and then
// echoes what it receives until the peer closes it or ctx ends; it closes
// ln and the connections and waits for its goroutines before it returns.
func (s *Server) ServeStreams(ctx context.Context, ln net.Listener) error {
	if !validName(s.ISP) {
		return fmt.Errorf("%w: %q", ErrBadIdentity, s.ISP)
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
	})
	defer stop()
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			log.Warn("accept", "err", err)
			continue
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			c.Close()
			return nil
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			if _, err := c.Write([]byte(Greeting(s.ISP, c.RemoteAddr().String()))); err != nil {
				return
			}
			_, _ = io.Copy(c, c)
		})
	}
}

// runStreams opens the Config's streams, writes a record on each every
// interval until ctx ends, reads the echoes, and returns when every stream
// has stopped: at ctx's end it waits drain for the last echoes, then
// closes the connections.
func (c *Client) runStreams(ctx context.Context, drain time.Duration) {
	interval := time.Second / time.Duration(c.cfg.StreamRate)
	addr := net.JoinHostPort(c.cfg.Server.String(), fmt.Sprint(c.cfg.StreamPort))
	var wg sync.WaitGroup
	for i := range c.cfg.Streams {
		st := NewStream(i, interval)
		c.mu.Lock()
		c.streams = append(c.streams, st)
		c.mu.Unlock()
		offset := interval * time.Duration(i) / time.Duration(c.cfg.Streams)
		wg.Go(func() { c.stream(ctx, st, addr, offset, interval, drain) })
	}
	wg.Wait()
}

func (c *Client) stream(ctx context.Context, st *Stream, addr string, offset, interval, drain time.Duration) {
	fail := func(err error) {
		c.mu.Lock()
		st.Failed(err, time.Now())
		c.mu.Unlock()
	}
	d := net.Dialer{Timeout: c.cfg.ConnTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		fail(err)
		return
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(c.cfg.ConnTimeout))
	rd := bufio.NewReaderSize(conn, 4096)
	line, err := rd.ReadString('\n')
	if err != nil {
		fail(fmt.Errorf("greeting: %w", err))
		return
	}
	isp, src, err := ParseGreeting(line)
	if err != nil {
		fail(err)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	c.mu.Lock()
	st.Connected(isp, src, conn.LocalAddr().(*net.TCPAddr).Port, time.Now())
	c.mu.Unlock()

	var closing sync.Mutex // held while the client closes the connection on purpose
	done := false
	var rwg sync.WaitGroup
	rwg.Go(func() {
		buf := make([]byte, recordLen)
		for {
			if _, err := io.ReadFull(rd, buf); err != nil {
				closing.Lock()
				ours := done
				closing.Unlock()
				if !ours {
					fail(err)
				}
				return
			}
			seq, _ := ParseRecord(buf)
			now := time.Now()
			c.mu.Lock()
			st.Received(seq, now)
			c.mu.Unlock()
		}
	})
	c.write(ctx, conn, st, offset, interval, fail)
	// Wait for the last echoes, then close: the reader's error is ours.
	t := time.NewTimer(drain)
	<-t.C
	closing.Lock()
	done = true
	closing.Unlock()
	conn.Close()
	rwg.Wait()
}

// write sends one record every interval until ctx ends or a write fails.
func (c *Client) write(ctx context.Context, conn net.Conn, st *Stream, offset, interval time.Duration, fail func(error)) {
	if !startAfter(ctx, offset) {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	buf := make([]byte, 0, recordLen)
	for {
		c.mu.Lock()
		seq := st.Sent()
		c.mu.Unlock()
		if _, err := conn.Write(AppendRecord(buf[:0], seq, time.Now().UnixNano())); err != nil {
			fail(err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
