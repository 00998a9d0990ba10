package traffic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Server answers the client's datagrams and connections with its identity.
type Server struct {
	ISP string // identity sent back, e.g. isp1: [a-z0-9_-], at most 64 bytes
	Log *slog.Logger
}

// ErrBadIdentity is returned for a server identity that cannot be sent.
var ErrBadIdentity = errors.New("traffic: server identity must be 1..64 characters of [a-z0-9_-]")

func validName(s string) bool {
	if s == "" || len(s) > maxName {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Serve echoes datagrams on pc and greets connections on every listener
// until ctx ends; it closes pc and the listeners and waits for its
// goroutines before it returns.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, lns ...net.Listener) error {
	if !validName(s.ISP) {
		return fmt.Errorf("%w: %q", ErrBadIdentity, s.ISP)
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	errs := make([]error, 1+len(lns))
	if pc != nil {
		wg.Go(func() { errs[0] = s.serveUDP(ctx, pc) })
	}
	for i, ln := range lns {
		wg.Go(func() { errs[1+i] = s.serveTCP(ctx, ln, log) })
	}
	<-ctx.Done()
	if pc != nil {
		pc.Close()
	}
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Server) serveUDP(ctx context.Context, pc net.PacketConn) error {
	buf := make([]byte, 2048)
	out := make([]byte, 0, 256)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("traffic: udp: %w", err)
			}
			continue // e.g. an ICMP error reported on the socket
		}
		p, err := ParseProbe(buf[:n])
		if err != nil {
			continue
		}
		out = AppendEcho(out[:0], Echo{Probe: p, ISP: s.ISP, Source: from.String()})
		_, _ = pc.WriteTo(out, from) // a lost echo is the client's to count
	}
}

func (s *Server) serveTCP(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	var wg sync.WaitGroup
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
		wg.Go(func() {
			defer c.Close()
			_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.Write([]byte(Greeting(s.ISP, c.RemoteAddr().String())))
		})
	}
}
