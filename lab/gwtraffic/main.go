// Command gwtraffic is the lab's traffic tool (package lab/traffic) as a
// process, run by the lab harness inside a namespace:
//
//	gwtraffic server --isp isp1 --udp 7000 --tcp 8080,443 [--stream 9000]
//	gwtraffic client --server 203.0.113.1 --udp 7000 --flows 20 --rate 100 \
//	    --tcp 8080 --conn-rate 20 [--streams 12 --stream-port 9000 --stream-rate 100] \
//	    --report r.json --status s.json [--duration 10s]
//
// The server runs until SIGTERM or SIGINT. The client runs until then (or
// --duration), writes its progress to --status every 100 ms while it runs
// and its report to --report (JSON, stdout when empty) at the end; both
// files are replaced atomically.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gwstated/lab/traffic"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gwtraffic server|client [flags] (-h for the flags)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "server":
		err = server(ctx, os.Args[2:])
	case "client":
		err = client(ctx, os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q: want server or client", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gwtraffic:", err)
		os.Exit(1)
	}
}

func ports(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("port %q: want 1..65535", f)
		}
		out = append(out, p)
	}
	return out, nil
}

func server(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	isp := fs.String("isp", "", "identity sent back (the ISP whose namespace this is)")
	listen := fs.String("listen", "203.0.113.1", "address to listen on (bound: a UDP reply leaves from the address the request was sent to)")
	udp := fs.Int("udp", 7000, "UDP echo port")
	tcp := fs.String("tcp", "8080", "TCP ports, comma-separated")
	stream := fs.Int("stream", 0, "TCP echo port for long-lived streams (0: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *stream < 0 || *stream > 65535 {
		return fmt.Errorf("--stream %d: want 0..65535", *stream)
	}
	addr, err := netip.ParseAddr(*listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	tcpPorts, err := ports(*tcp)
	if err != nil {
		return fmt.Errorf("--tcp: %w", err)
	}
	pc, err := traffic.ListenUDP(ctx, netip.AddrPortFrom(addr, uint16(*udp)).String(), traffic.ServerReadBuffer)
	if err != nil {
		return err
	}
	var lns []net.Listener
	for _, p := range tcpPorts {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, uint16(p)).String())
		if err != nil {
			pc.Close()
			for _, l := range lns {
				l.Close()
			}
			return err
		}
		lns = append(lns, ln)
	}
	var echo net.Listener
	if *stream > 0 {
		if echo, err = net.Listen("tcp", netip.AddrPortFrom(addr, uint16(*stream)).String()); err != nil {
			pc.Close()
			for _, l := range lns {
				l.Close()
			}
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	log.Info("serving", "isp", *isp, "udp", *udp, "tcp", tcpPorts, "stream", *stream)
	srv := &traffic.Server{ISP: *isp, Log: log}
	var wg sync.WaitGroup
	var streamErr error
	if echo != nil {
		wg.Go(func() { streamErr = srv.ServeStreams(ctx, echo) })
	}
	err = srv.Serve(ctx, pc, lns...)
	wg.Wait()
	return errors.Join(err, streamErr)
}

func client(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	srv := fs.String("server", "203.0.113.1", "server address")
	udp := fs.Int("udp", 7000, "server UDP port")
	flows := fs.Int("flows", 20, "concurrent UDP streams")
	rate := fs.Int("rate", 100, "datagrams per second per stream")
	tcp := fs.String("tcp", "8080", "server TCP ports, comma-separated")
	connRate := fs.Int("conn-rate", 20, "new connections per second per TCP port")
	connTimeout := fs.Duration("conn-timeout", time.Second, "bound of one connection attempt")
	streams := fs.Int("streams", 0, "long-lived TCP streams to --stream-port")
	streamPort := fs.Int("stream-port", 0, "the server's TCP echo port (its --stream)")
	streamRate := fs.Int("stream-rate", 100, "records per second per stream")
	duration := fs.Duration("duration", 0, "stop after this long (0: at SIGTERM)")
	report := fs.String("report", "", "write the JSON report here (default stdout)")
	status := fs.String("status", "", "write the progress here every 100 ms")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, err := netip.ParseAddr(*srv)
	if err != nil {
		return fmt.Errorf("--server: %w", err)
	}
	tcpPorts, err := ports(*tcp)
	if err != nil {
		return fmt.Errorf("--tcp: %w", err)
	}
	c, err := traffic.NewClient(traffic.Config{
		Server: addr, UDPPort: *udp, Flows: *flows, Rate: *rate,
		TCPPorts: tcpPorts, ConnRate: *connRate, ConnTimeout: *connTimeout,
		Streams: *streams, StreamPort: *streamPort, StreamRate: *streamRate,
	})
	if err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	var wg sync.WaitGroup
	runCtx, stopStatus := context.WithCancel(ctx)
	var statusErr error
	if *status != "" {
		wg.Go(func() { statusErr = writeStatus(runCtx, c, *status) })
	}
	r, err := c.Run(ctx)
	stopStatus()
	wg.Wait()
	if err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if *report == "" {
		_, err = stdout.Write(append(b, '\n'))
		return errors.Join(err, statusErr)
	}
	return errors.Join(writeAtomic(*report, b), statusErr)
}

func writeStatus(ctx context.Context, c *traffic.Client, path string) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		b, err := json.Marshal(c.Status())
		if err != nil {
			return err
		}
		if err := writeAtomic(path, b); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// writeAtomic replaces path with b (write to a temporary file, rename).
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
