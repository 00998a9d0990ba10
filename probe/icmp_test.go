package probe_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"gwstated/config"
	"gwstated/lab"
	"gwstated/linkstate"
	"gwstated/probe"
)

type stamped struct {
	at time.Time
	o  linkstate.Observation
}

// watch records emitted Observations and lets a test wait for a condition.
type watch struct {
	mu   sync.Mutex
	hist []stamped
	note chan struct{}
}

func newWatch() *watch { return &watch{note: make(chan struct{}, 1)} }

func (w *watch) emit(o linkstate.Observation) {
	w.mu.Lock()
	w.hist = append(w.hist, stamped{time.Now(), o})
	w.mu.Unlock()
	select {
	case w.note <- struct{}{}:
	default:
	}
}

// first returns the first Observation at or after since that satisfies ok.
func (w *watch) first(since time.Time, ok func(linkstate.Observation) bool) (stamped, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.hist {
		if !s.at.Before(since) && ok(s.o) {
			return s, true
		}
	}
	return stamped{}, false
}

// until waits, at most timeout, for an Observation emitted at or after
// since that satisfies ok.
func (w *watch) until(t testing.TB, since time.Time, timeout time.Duration, what string, ok func(linkstate.Observation) bool) stamped {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if s, found := w.first(since, ok); found {
			return s
		}
		select {
		case <-w.note:
		case <-deadline.C:
			t.Fatalf("no %s within %v", what, timeout)
		}
	}
}

// untilLatest waits, at most timeout, until the latest Observation of
// every link seen so far satisfies ok.
func (w *watch) untilLatest(t testing.TB, timeout time.Duration, what string, ok func(map[string]linkstate.Observation) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		latest := map[string]linkstate.Observation{}
		for _, s := range w.hist {
			latest[s.o.Link] = s.o
		}
		w.mu.Unlock()
		if ok(latest) {
			return
		}
		select {
		case <-w.note:
		case <-deadline.C:
			t.Fatalf("no %s within %v", what, timeout)
		}
	}
}

func is(link string, s linkstate.State) func(linkstate.Observation) bool {
	return func(o linkstate.Observation) bool { return o.Link == link && o.State == s }
}

// labConfig probes isp1 (gateway, internet host v4 and v6, need 3; probe
// source set for IPv4) and isp2 (internet host v4 and v6, need 2; sources
// from the interface) from fw1.
func labConfig(l *lab.Lab, profile string) *config.Config {
	s1, _ := l.ISP("isp1")
	s2, _ := l.ISP("isp2")
	u1, u2 := l.Uplink("fw1", "isp1"), l.Uplink("fw1", "isp2")
	cfg := probe.TestConfig(
		config.Link{Name: "isp1", Interface: u1.Interface, Gateway: s1.Gateway4, Probe: config.Probe{
			Profile: profile, Need: 3, Targets: []netip.Addr{s1.Gateway4, lab.Internet4, lab.Internet6}}},
		config.Link{Name: "isp2", Interface: u2.Interface, Gateway: s2.Gateway4, Probe: config.Probe{
			Profile: profile, Need: 2, Targets: []netip.Addr{lab.Internet4, lab.Internet6}}},
	)
	cfg.Nodes = map[string]config.NodeSpec{"fw1": {ProbeSource: map[string]netip.Addr{"isp1": u1.Addr4}}}
	return cfg
}

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startProber runs a prober in fw1's namespace until the test ends.
func startProber(t testing.TB, l *lab.Lab, cfg *config.Config) *watch {
	t.Helper()
	w, _ := startProberP(t, l, cfg)
	return w
}

func startProberP(t testing.TB, l *lab.Lab, cfg *config.Config, opts ...probe.Option) (*watch, *probe.Prober) {
	t.Helper()
	opts = append([]probe.Option{probe.WithNetns(l.NetnsPath("fw1")), probe.WithHeartbeat(200 * time.Millisecond)}, opts...)
	p, err := probe.New(cfg, testLog(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	w := newWatch()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, w.emit) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w, p
}

// bound is the worst-case detection time of a hard loss, fall·interval +
// timeout, plus slack for a loaded machine (the race detector, two cores).
func bound(cfg *config.Config, link int) (time.Duration, time.Duration) {
	p, _ := probe.ParamsFor(cfg.Links[link])
	d := time.Duration(p.Fall)*p.Interval + p.Timeout
	return d, d + 2*time.Second
}

func TestICMPCutAndRestore(t *testing.T) {
	l := lab.Start(t, lab.Options{NoWitness: true, NoLAN: true})
	ctx := context.Background()
	cfg := labConfig(l, "fast")
	w := startProber(t, l, cfg)
	start := time.Now()
	w.until(t, start, 10*time.Second, "isp1 up", is("isp1", linkstate.Up))
	w.until(t, start, 10*time.Second, "isp2 up", is("isp2", linkstate.Up))

	want, limit := bound(cfg, 0)
	cut := time.Now()
	if err := l.Cut(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	down := w.until(t, cut, limit, "isp1 down after the cut", is("isp1", linkstate.Down))
	t.Logf("isp1 down %v after the cut (fall·interval+timeout = %v)", down.at.Sub(cut), want)
	if err := l.Restore(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	restored := time.Now()
	up := w.until(t, restored, 10*time.Second, "isp1 up after restore", is("isp1", linkstate.Up))
	t.Logf("isp1 up %v after restore", up.at.Sub(restored))
	if s, found := w.first(start, is("isp2", linkstate.Down)); found {
		t.Errorf("isp2 went down at %v while only isp1 was cut: %+v", s.at.Sub(start), s.o)
	}
	// A link's targets are probed in one phase, so any of them may be the
	// first to go down (need 3: the first takes the link down).
	if len(down.o.Targets) != 3 || !slices.ContainsFunc(down.o.Targets, func(tg linkstate.TargetObs) bool {
		return tg.State == linkstate.Down && tg.Reason == string(probe.ReasonFall)
	}) {
		t.Errorf("down observation targets: %+v, want one down on fall", down.o.Targets)
	}
}

// Source binding: fw1's main table routes the internet host via isp2, its
// policy rules route isp1's source addresses via isp1. isp1's probes of the
// internet host keep working when everything on isp2's segment is dropped
// (a mis-bound probe would leave by isp2 and die) and break when isp1's own
// segment is dropped (a mis-bound probe would survive via isp2). Both
// families: IPv4 with nodes.fw1.probe_source, IPv6 from wan0's address.
func TestICMPSourceBinding(t *testing.T) {
	l := lab.Start(t, lab.Options{NoWitness: true, NoLAN: true})
	ctx := context.Background()
	cfg := labConfig(l, "fast")
	w := startProber(t, l, cfg)
	start := time.Now()
	w.until(t, start, 10*time.Second, "isp1 up", is("isp1", linkstate.Up))
	w.until(t, start, 10*time.Second, "isp2 up", is("isp2", linkstate.Up))

	want, limit := bound(cfg, 1)
	cut := time.Now()
	if err := l.Cut(ctx, "isp2"); err != nil {
		t.Fatal(err)
	}
	w.until(t, cut, limit, "isp2 down", is("isp2", linkstate.Down))
	// By the time a mis-bound probe would have missed fall times, isp1 must
	// still be answering on every target.
	after := cut.Add(2 * want)
	w.until(t, cut, limit+2*want, "isp1 answering after isp2's cut", func(o linkstate.Observation) bool {
		return o.Link == "isp1" && o.LastOK.After(after)
	})
	if s, found := w.first(start, is("isp1", linkstate.Down)); found {
		t.Fatalf("isp1 went down when isp2's segment was dropped: its probes left by isp2: %+v", s.o)
	}
	if err := l.Restore(ctx, "isp2"); err != nil {
		t.Fatal(err)
	}
	cut = time.Now()
	if err := l.Cut(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	w.until(t, cut, limit, "isp1 down when its own segment is dropped", is("isp1", linkstate.Down))
	// Every target goes down, the internet host's too: its probes did not
	// escape by isp2. (Targets are probed out of phase, so the link is down
	// once the first of the three is; wait for all of them.)
	w.until(t, cut, limit+time.Second, "all of isp1's targets down", func(o linkstate.Observation) bool {
		if o.Link != "isp1" {
			return false
		}
		for _, tg := range o.Targets {
			if tg.State != linkstate.Down {
				return false
			}
		}
		return true
	})
}

// Raw ICMP refused (not root, no CAP_NET_RAW): Run fails with ErrNoPrivilege.
// The test re-runs itself as user nobody.
func TestICMPNoPrivilege(t *testing.T) {
	if os.Getenv("GWSTATED_PROBE_CHILD") == "noprivilege" {
		cfg := probe.TestConfig(config.Link{Name: "lo", Interface: "lo", Gateway: netip.MustParseAddr("127.0.0.1")})
		p, err := probe.New(cfg, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = p.Run(ctx, func(linkstate.Observation) {})
		if !errors.Is(err, probe.ErrNoPrivilege) {
			t.Fatalf("Run as uid %d: %v, want ErrNoPrivilege", os.Getuid(), err)
		}
		t.Logf("Run: %v", err)
		return
	}
	lab.Require(t)
	// The go test build directory is private to root: copy the test
	// binary where nobody can run it.
	dir, err := os.MkdirTemp("", "gwstated-probe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := dir + "/probe.test"
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestICMPNoPrivilege$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GWSTATED_PROBE_CHILD=noprivilege")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}
