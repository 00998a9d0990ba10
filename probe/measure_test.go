package probe_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gwstated/config"
	"gwstated/lab"
	"gwstated/linkstate"
	"gwstated/probe"
)

// Measurements for the report are benchmarks (they need root and the
// netns lab; one iteration is one cut, or one 30 s window):
//
//	go test -run '^$' -bench 'Detection|Scale64Links' -benchtime 20x ./probe/   detection latency, CPU/memory
//	go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x ./probe/          the cost curve (scale_bench_test.go)
//	GWSTATED_SOAK=10m go test -run Soak -v -timeout 1h ./probe/                 false downs under 10% loss
//	                                                  (GWSTATED_SOAK_PROFILE, default bfd)

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// BenchmarkDetection: cut (nft drop of everything at isp1's gateway) →
// Observation down, b.N cuts per profile at random phases; reports the
// latency's p50, p99 and max, the worst case on a steady path
// fall·interval + interval/2 (RTO at its floor), and the same from the
// last answer (Observation.LastOK) to the down Observation, which leaves
// out the time the nft command takes to cut.
func BenchmarkDetection(b *testing.B) {
	for _, profile := range []string{"default", "fast", "bfd"} {
		b.Run(profile, func(b *testing.B) { benchDetection(b, profile) })
	}
}

func benchDetection(t *testing.B, profile string) {
	cuts := t.N
	{
		l := lab.Start(t, lab.Options{NoWitness: true, NoLAN: true})
		ctx := context.Background()
		s1, _ := l.ISP("isp1")
		cfg := probe.TestConfig(config.Link{Name: "isp1", Interface: "wan0", Gateway: s1.Gateway4,
			Probe: config.Probe{Profile: profile}})
		w := startProber(t, l, cfg)
		p, _ := probe.ParamsFor(cfg.Links[0])
		hi := time.Duration(p.Fall)*p.Interval + p.Interval/2
		var lat, exec, fromLast []time.Duration
		w.until(t, time.Now(), 10*time.Second, "isp1 up", is("isp1", linkstate.Up))
		rng := rand.New(rand.NewPCG(1, 2))
		for range cuts {
			// A random phase relative to the probes.
			time.Sleep(time.Duration(rng.Int64N(int64(p.Interval))))
			cut := time.Now()
			if err := l.Cut(ctx, "isp1"); err != nil {
				t.Fatal(err)
			}
			exec = append(exec, time.Since(cut))
			d := w.until(t, cut, hi+5*time.Second, "down", is("isp1", linkstate.Down))
			lat = append(lat, d.at.Sub(cut))
			fromLast = append(fromLast, d.at.Sub(d.o.LastOK))
			if err := l.Restore(ctx, "isp1"); err != nil {
				t.Fatal(err)
			}
			w.until(t, time.Now(), 10*time.Second, "up", is("isp1", linkstate.Up))
		}
		t.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "p50-ms")
		t.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "p99-ms")
		t.ReportMetric(float64(slices.Max(lat).Microseconds())/1000, "max-ms")
		t.ReportMetric(float64(hi.Microseconds())/1000, "bound-ms")
		t.ReportMetric(float64(percentile(fromLast, 50).Microseconds())/1000, "last-answer-p50-ms")
		t.ReportMetric(float64(percentile(fromLast, 99).Microseconds())/1000, "last-answer-p99-ms")
		t.ReportMetric(float64(slices.Max(fromLast).Microseconds())/1000, "last-answer-max-ms")
		t.ReportMetric(float64(percentile(exec, 50).Microseconds())/1000, "nft-cut-p50-ms")
		t.ReportMetric(0, "ns/op")
	}
}

// False downs under 10% random loss (nft numgen at both gateways, on the
// requests) at GWSTATED_SOAK_PROFILE (default bfd), for GWSTATED_SOAK (e.g. 10m).
func TestSoakLoss10(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("GWSTATED_SOAK"))
	if err != nil {
		t.Skip("set GWSTATED_SOAK=5m to soak")
	}
	l := lab.Start(t, lab.Options{NoWitness: true, NoLAN: true})
	ctx := context.Background()
	prof := cmp.Or(os.Getenv("GWSTATED_SOAK_PROFILE"), "bfd")
	cfg := labConfig(l, prof) // isp1: 3 targets, need 3; isp2: 2 targets, need 2
	s1, _ := l.ISP("isp1")
	cfg.Links = append(cfg.Links, config.Link{Name: "isp1gw", Interface: "wan0", Gateway: s1.Gateway4,
		Probe: config.Probe{Profile: prof}}) // the gateway alone
	w := startProber(t, l, cfg)
	start := time.Now()
	for _, n := range []string{"isp1", "isp2", "isp1gw"} {
		w.until(t, start, 10*time.Second, n+" up", is(n, linkstate.Up))
	}
	for _, s := range []string{"isp1", "isp2"} {
		if err := l.Loss(ctx, s, 10); err != nil {
			t.Fatal(err)
		}
	}
	soakStart := time.Now()
	time.Sleep(d) // the soak's duration is the measurement, not a synchronisation
	w.mu.Lock()
	defer w.mu.Unlock()
	downs := map[string]int{}
	targetDowns := map[string]int{}
	last := map[string]linkstate.Observation{}
	var lossSum float64
	var lossN int
	for _, s := range w.hist {
		prev, seen := last[s.o.Link]
		last[s.o.Link] = s.o
		if s.at.Before(soakStart) || !seen {
			continue
		}
		if s.o.State == linkstate.Down && prev.State != linkstate.Down {
			downs[s.o.Link]++
			t.Logf("false down: %s at +%v: %+v", s.o.Link, s.at.Sub(soakStart), s.o)
		}
		for i, tg := range s.o.Targets {
			if tg.State == linkstate.Down && i < len(prev.Targets) && prev.Targets[i].State != linkstate.Down {
				targetDowns[s.o.Link+"/"+tg.Addr.String()]++
			}
			lossSum += tg.Loss
			lossN++
		}
	}
	p, _ := probe.ParamsFor(cfg.Links[0])
	probes := int(d / p.Interval)
	t.Logf("10%% loss soak, %s profile, %v: %d requests per target, 7 targets; mean window loss seen %.1f%%; link downs %v; target downs %v",
		prof, d, probes, lossSum/float64(max(lossN, 1)), downs, targetDowns)
	for _, n := range []string{"isp1", "isp2", "isp1gw"} {
		if downs[n] > 0 {
			t.Errorf("%s: %d false downs under 10%% loss", n, downs[n])
		}
	}
}

// BenchmarkScale64Links: CPU and memory of 64 links × 4 targets at a
// 200 ms interval (1280 requests/s), real ICMP from a firewall namespace to
// 256 addresses in a gateway namespace, over a 30 s window per iteration;
// every observation in the window must be up (a clean network).
func BenchmarkScale64Links(t *testing.B) {
	l := lab.Start(t, lab.Options{ISPs: 1, Firewalls: 1, NoWitness: true, NoLAN: true})
	ctx := context.Background()
	s1, _ := l.ISP("isp1")
	u := l.Uplink("fw1", "isp1")
	cfg := probe.TestConfig()
	cfg.Nodes = map[string]config.NodeSpec{"fw1": {ProbeSource: map[string]netip.Addr{}}}
	for i := range 64 {
		name := fmt.Sprintf("l%d", i)
		link := config.Link{Name: name, Interface: "wan0", Gateway: s1.Gateway4,
			Probe: config.Probe{Interval: 200 * time.Millisecond, Timeout: 400 * time.Millisecond, Fall: 5, Need: 4}}
		for j := range 4 {
			a := netip.AddrFrom4([4]byte{198, 19, byte(i), byte(j + 1)})
			if err := l.IP(ctx, "isp1", "addr", "add", a.String()+"/32", "dev", "lo"); err != nil {
				t.Fatal(err)
			}
			link.Probe.Targets = append(link.Probe.Targets, a)
		}
		cfg.Links = append(cfg.Links, link)
		cfg.Nodes["fw1"].ProbeSource[name] = u.Addr4
	}
	w := startProber(t, l, cfg)
	w.untilLatest(t, 30*time.Second, "all 64 links up", func(m map[string]linkstate.Observation) bool {
		for _, o := range m {
			if o.State != linkstate.Up {
				return false
			}
		}
		return len(m) == 64
	})
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, t0 := rusage(), time.Now()
	const span = 30 * time.Second
	time.Sleep(span) // the measurement window, not a synchronisation
	cpu, wall := rusage()-cpu0, time.Since(t0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	downs := 0
	w.mu.Lock()
	for _, s := range w.hist {
		if s.at.After(t0) && s.o.State != linkstate.Up {
			downs++
			if downs <= 5 {
				t.Logf("not up at +%v: %+v", s.at.Sub(t0), s.o)
			}
		}
	}
	w.mu.Unlock()
	t.Logf("64 links × 4 targets, 200 ms interval, %v: RSS %s, %d goroutines", wall.Round(time.Second), rss(), runtime.NumGoroutine())
	t.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	t.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	t.ReportMetric(float64(ms.Sys)/(1<<20), "go-sys-MiB")
	t.ReportMetric(float64(ms.Mallocs-ms0.Mallocs)/wall.Seconds(), "allocs/s")
	t.ReportMetric(0, "ns/op")
	if downs > 0 {
		t.Errorf("%d observations not up on a clean network", downs)
	}
}

func rusage() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rss() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
		}
	}
	return "?"
}
