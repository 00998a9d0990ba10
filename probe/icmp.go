package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// sessionSends is how many requests one pro-bing Pinger sends before it is
// replaced by a fresh one (same phase). pro-bing keeps every unanswered
// sequence number in a map for the life of the Pinger; replacing it every
// 60 000 requests (100 min at 100 ms) bounds that memory on a dead link.
const sessionSends = 60000

// ICMP is the real Transport: privileged (raw socket) ICMP echo with
// github.com/prometheus-community/pro-bing, one long-lived Pinger — one
// socket — per target, bound to the link's source address.
type ICMP struct {
	// Netns, when set, is the path of a network namespace (Linux) in which
	// the sockets are opened; see the package documentation.
	Netns string
	Log   *slog.Logger
}

// Ping implements Transport.
func (t *ICMP) Ping(ctx context.Context, spec Spec, h Handler) error {
	first := time.NewTimer(spec.Offset)
	select {
	case <-ctx.Done():
		first.Stop()
		return nil
	case <-first.C:
	}
	var base uint64
	for {
		n, last, err := t.session(ctx, spec, h, base)
		if err != nil || ctx.Err() != nil {
			return err
		}
		base += n
		// Keep the phase: the next Pinger sends its first request one
		// interval after the last one.
		wait := time.NewTimer(time.Until(last.Add(spec.Interval)))
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil
		case <-wait.C:
		}
	}
}

// session runs one Pinger until ctx ends or it has sent sessionSends
// requests; it returns how many it sent and when the last one went out.
func (t *ICMP) session(ctx context.Context, spec Spec, h Handler, base uint64) (uint64, time.Time, error) {
	restore := func() {}
	if t.Netns != "" {
		runtime.LockOSThread()
		back, err := enterNetns(t.Netns)
		if err != nil {
			runtime.UnlockOSThread()
			return 0, time.Time{}, err
		}
		restore = func() {
			restore = func() {}
			if err := back(); err != nil {
				// The thread stays locked to this goroutine and is
				// destroyed when it exits: nothing else runs in the
				// wrong namespace.
				t.Log.Error("probe: cannot leave network namespace", "netns", t.Netns, "err", err)
				return
			}
			runtime.UnlockOSThread()
		}
	}
	defer func() { restore() }()

	src, err := sourceAddr(spec)
	if err != nil {
		return 0, time.Time{}, err
	}
	p := probing.New("")
	p.SetIPAddr(&net.IPAddr{IP: spec.Target.AsSlice(), Zone: spec.Target.Zone()})
	p.SetPrivileged(true)
	p.Interval = spec.Interval
	p.Count = -1
	p.RecordRtts = false
	p.RecordTTLs = false
	p.Source = src.String()
	p.SetLogger(pbLogger{log: t.Log, link: spec.Link, target: spec.Target})
	var sent atomic.Uint64
	var last atomic.Int64
	p.OnSetup = func() { restore() } // the socket is open: leave the namespace
	p.OnSend = func(pkt *probing.Packet) {
		now := time.Now()
		last.Store(now.UnixNano())
		h.Sent(base+uint64(pkt.Seq), now)
		if sent.Add(1) >= sessionSends {
			p.Stop()
		}
	}
	p.OnRecv = func(pkt *probing.Packet) { h.Replied(base+uint64(pkt.Seq), pkt.Rtt, time.Now()) }
	p.OnSendError = func(pkt *probing.Packet, err error) { h.SendFailed(base+uint64(pkt.Seq), time.Now(), err) }
	err = p.RunWithContext(ctx)
	if ctx.Err() != nil {
		err = nil
	}
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			err = fmt.Errorf("%w (%v)", ErrNoPrivilege, err)
		}
		return sent.Load(), time.Unix(0, last.Load()), fmt.Errorf("ping %v from %v: %w", spec.Target, src, err)
	}
	return sent.Load(), time.Unix(0, last.Load()), nil
}

// sourceAddr is spec.Source, else the first address of spec.Interface of
// the target's IP version (global before link-local).
func sourceAddr(spec Spec) (netip.Addr, error) {
	if spec.Source.IsValid() {
		return spec.Source, nil
	}
	ifi, err := net.InterfaceByName(spec.Interface)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("link %s: source address: %w", spec.Link, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("link %s: addresses of %s: %w", spec.Link, spec.Interface, err)
	}
	var linkLocal netip.Addr
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		if ip.Is4() != spec.Target.Is4() {
			continue
		}
		if ip.IsLinkLocalUnicast() {
			if !linkLocal.IsValid() {
				linkLocal = ip.WithZone(spec.Interface)
			}
			continue
		}
		return ip, nil
	}
	if linkLocal.IsValid() && spec.Target.IsLinkLocalUnicast() {
		return linkLocal, nil
	}
	v := "IPv6"
	if spec.Target.Is4() {
		v = "IPv4"
	}
	return netip.Addr{}, fmt.Errorf("link %s: interface %s has no %s address to probe %v from (set nodes.<node>.probe_source.%s)", spec.Link, spec.Interface, v, spec.Target, spec.Link)
}

// pbLogger sends pro-bing's log lines to slog.
type pbLogger struct {
	log    *slog.Logger
	link   string
	target netip.Addr
}

func (l pbLogger) f(level slog.Level, format string, v ...any) {
	l.log.Log(context.Background(), level, "pro-bing: "+fmt.Sprintf(format, v...), "link", l.link, "target", l.target)
}
func (l pbLogger) Fatalf(format string, v ...any) { l.f(slog.LevelError, format, v...) }
func (l pbLogger) Errorf(format string, v ...any) { l.f(slog.LevelError, format, v...) }
func (l pbLogger) Warnf(format string, v ...any)  { l.f(slog.LevelWarn, format, v...) }
func (l pbLogger) Infof(format string, v ...any)  { l.f(slog.LevelDebug, format, v...) }
func (l pbLogger) Debugf(format string, v ...any) { l.f(slog.LevelDebug, format, v...) }
