package probe_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gwstated/config"
	"gwstated/lab"
	"gwstated/linkstate"
	"gwstated/probe"
)

// BenchmarkScale is the probing cost curve: process CPU time (getrusage,
// user+sys, so other processes on the machine do not count) per second of
// wall clock, the goroutines the prober added, its sockets, the heap
// allocations per second, and the echo requests and replies fw1's kernel
// counted per second (sent/s, replies/s: what was really sent), for 1, 4,
// 16 and 64 links × 4 targets at a 200 ms interval and at the bfd
// profile's 20 ms, real ICMP from fw1's namespace to addresses on isp1's
// loopback. Each link sends from an address of its own, as on a firewall
// with one uplink per link. One iteration is a 3 s window
// (GWSTATED_SCALE_WINDOW; docs/probing.md uses 5s):
//
//	go test -run '^$' -bench '^BenchmarkScale(Floor)?$' -benchtime 1x ./probe/        (root)
//
// BenchmarkScaleFloor (scale_floor_linux_test.go) is the same traffic
// from a minimal sender: the floor this is compared with.
// GWSTATED_PROFILE_DIR=dir writes CPU, allocation and goroutine profiles
// of each run there. GWSTATED_SCALE_NOREPLY=1 adds a second window to each
// case, after the first, with isp1 dropping the requests on arrival
// (noreply-cpu%, noreply-sys%): the same prober and requests without the
// lab's answer. In the lab the gateway namespace answers inside the
// prober's sendmmsg — its ICMP echo, the reply's way back over the bridge
// and veth and its delivery to our socket run in softirq in our system
// call and are charged to our process (this kernel has no
// CONFIG_IRQ_TIME_ACCOUNTING) — where a real uplink's gateway answers on
// its own CPU. cpu% − noreply-cpu% is that reply path plus our own
// reading of the replies (recvmmsg and parsing, a small part: perf).
func BenchmarkScale(b *testing.B) {
	sl := startScaleLab(b)
	ctx := context.Background()
	for _, iv := range scaleIntervals {
		for _, n := range scaleLinks {
			b.Run(fmt.Sprintf("interval=%v/links=%d", iv, n), func(b *testing.B) {
				cfg := probe.TestConfig()
				cfg.Nodes = map[string]config.NodeSpec{"fw1": {ProbeSource: map[string]netip.Addr{}}}
				for i := range n {
					name := fmt.Sprintf("l%d", i)
					link := config.Link{Name: name, Interface: sl.u.Interface, Gateway: sl.u.Addr4,
						Probe: config.Probe{Profile: "bfd", Interval: iv, Need: scalePerLink}}
					if iv >= 100*time.Millisecond {
						link.Probe.Timeout, link.Probe.Fall = 2*iv, 5
					}
					link.Probe.Targets = append(link.Probe.Targets, sl.targets[i]...)
					cfg.Links = append(cfg.Links, link)
					cfg.Nodes["fw1"].ProbeSource[name] = sl.sources[i]
				}
				runtime.GC()
				g0 := runtime.NumGoroutine()
				w, p := startProberP(b, sl.l, cfg, probe.WithHeartbeat(probe.DefaultHeartbeat)) // the agent's
				w.untilLatest(b, 30*time.Second, "every link up", func(m map[string]linkstate.Observation) bool {
					for _, o := range m {
						if o.State != linkstate.Up {
							return false
						}
					}
					return len(m) == n
				})
				goroutines := runtime.NumGoroutine() - g0
				t0 := time.Now()
				sl.measure(b, fmt.Sprintf("%v-%d", iv, n))
				t1 := time.Now()
				noReply := sl.noReply(ctx, b)
				if noReply {
					// The same prober for a second window with isp1
					// dropping the requests on arrival: no echo, no reply
					// (docs/probing.md, "Whose CPU time").
					time.Sleep(time.Second) // the links go down: not in the window
					u0, s0 := rusageSplit()
					w0 := time.Now()
					time.Sleep(sl.window) // the measurement window, not a synchronisation
					u1, s1 := rusageSplit()
					wall := time.Since(w0).Seconds()
					b.ReportMetric(100*(u1-u0+s1-s0).Seconds()/wall, "noreply-cpu%")
					b.ReportMetric(100*(s1-s0).Seconds()/wall, "noreply-sys%")
				}
				downs := 0
				w.mu.Lock()
				for _, s := range w.hist {
					if s.at.After(t0) && s.at.Before(t1) && s.o.State != linkstate.Up {
						downs++
					}
				}
				w.mu.Unlock()
				b.ReportMetric(float64(goroutines), "goroutines")
				b.ReportMetric(float64(p.Sockets()), "sockets")
				b.ReportMetric(float64(n*scalePerLink)*float64(time.Second/iv), "probes/s")
				b.ReportMetric(float64(downs), "not-up")
				if downs > 0 {
					b.Errorf("%d observations not up on a clean network", downs)
				}
			})
		}
	}
}

var (
	scaleIntervals = []time.Duration{200 * time.Millisecond, 20 * time.Millisecond}
	scaleLinks     = []int{1, 4, 16, 64}
)

const scaleMaxLinks, scalePerLink = 64, 4

// scaleLab is the lab of BenchmarkScale and BenchmarkScaleFloor: fw1 with
// a source address per link on its isp1 uplink, and 4 target addresses
// per link on isp1's loopback.
type scaleLab struct {
	l       *lab.Lab
	u       lab.Uplink
	sources []netip.Addr
	targets [][]netip.Addr // by link
	window  time.Duration
}

func startScaleLab(b *testing.B) *scaleLab {
	l := lab.Start(b, lab.Options{ISPs: 1, Firewalls: 1, NoWitness: true, NoLAN: true})
	ctx := context.Background()
	sl := &scaleLab{l: l, u: l.Uplink("fw1", "isp1"), window: 3 * time.Second}
	if d, err := time.ParseDuration(os.Getenv("GWSTATED_SCALE_WINDOW")); err == nil {
		sl.window = d
	}
	for i := range scaleMaxLinks {
		var ts []netip.Addr
		for j := range scalePerLink {
			a := netip.AddrFrom4([4]byte{198, 19, byte(i), byte(j + 1)})
			if err := l.IP(ctx, "isp1", "addr", "add", a.String()+"/32", "dev", "lo"); err != nil {
				b.Fatal(err)
			}
			ts = append(ts, a)
		}
		sl.targets = append(sl.targets, ts)
		// A source address per link on the uplink's segment.
		s := netip.AddrFrom4([4]byte{198, 18, 1, byte(100 + i)})
		if err := l.IP(ctx, "fw1", "addr", "add", s.String()+"/24", "dev", sl.u.Interface); err != nil {
			b.Fatal(err)
		}
		sl.sources = append(sl.sources, s)
	}
	return sl
}

// noReply has isp1 drop the requests on arrival when
// GWSTATED_SCALE_NOREPLY=1 (until the end of b): what is left is the
// sender and the sending half of the kernel's work.
func (sl *scaleLab) noReply(ctx context.Context, b *testing.B) bool {
	if os.Getenv("GWSTATED_SCALE_NOREPLY") != "1" {
		return false
	}
	if err := sl.l.Loss(ctx, "isp1", 100); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sl.l.Restore(ctx, "isp1") })
	return true
}

// icmpCounters are fw1's kernel counters of echo requests sent and echo
// replies received (/proc/net/snmp in its namespace): what was really
// sent, whoever sent it.
func (sl *scaleLab) icmpCounters(b *testing.B) (outEchos, inEchoReps uint64) {
	out, err := exec.Command("ip", "netns", "exec", sl.l.Netns("fw1"), "cat", "/proc/net/snmp").Output()
	if err != nil {
		b.Fatalf("fw1's /proc/net/snmp: %v", err)
	}
	var names []string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Icmp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, v := range f {
			if i >= len(names) {
				break
			}
			n, _ := strconv.ParseUint(v, 10, 64)
			switch names[i] {
			case "OutEchos":
				outEchos = n
			case "InEchoReps":
				inEchoReps = n
			}
		}
		break
	}
	return outEchos, inEchoReps
}

// measure is measureCPU plus the echo requests fw1 really sent and the
// replies it received per second of the window (sent/s, replies/s).
func (sl *scaleLab) measure(b *testing.B, name string) {
	o0, i0 := sl.icmpCounters(b)
	t0 := time.Now()
	measureCPU(b, sl.window, name)
	wall := time.Since(t0)
	o1, i1 := sl.icmpCounters(b)
	b.ReportMetric(float64(o1-o0)/wall.Seconds(), "sent/s")
	b.ReportMetric(float64(i1-i0)/wall.Seconds(), "replies/s")
}

// measureCPU runs b's loop, one window per iteration, and reports the
// process's CPU time (user + system, getrusage) per second of wall clock
// and its heap allocations per second (the whole process: the test's
// observation recorder too).
func measureCPU(b *testing.B, window time.Duration, name string) {
	stop := profile(b, name)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	u0, s0 := rusageSplit()
	t0 := time.Now()
	for b.Loop() {
		time.Sleep(window) // the measurement window, not a synchronisation
	}
	u1, s1 := rusageSplit()
	wall := time.Since(t0)
	runtime.ReadMemStats(&m1)
	stop()
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/wall.Seconds(), "allocs/s")
	user, sys := u1-u0, s1-s0
	b.ReportMetric(100*(user+sys).Seconds()/wall.Seconds(), "cpu%")
	b.ReportMetric(100*user.Seconds()/wall.Seconds(), "user%")
	b.ReportMetric(100*sys.Seconds()/wall.Seconds(), "sys%")
	b.ReportMetric(0, "ns/op")
}

// profile starts a CPU profile into GWSTATED_PROFILE_DIR and records
// every allocation; the returned func stops them and writes the CPU,
// allocation (allocs-NAME; the window's are those not in allocs0-NAME:
// go tool pprof -diff_base allocs0-NAME allocs-NAME) and goroutine
// profiles.
func profile(b *testing.B, name string) func() {
	dir := os.Getenv("GWSTATED_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, "cpu-"+name+".pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	runtime.MemProfileRate = 1 // every allocation of the window
	writeAllocs := func(file string) {
		runtime.GC()
		a, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			b.Fatal(err)
		}
		defer a.Close()
		_ = pprof.Lookup("allocs").WriteTo(a, 0)
	}
	writeAllocs("allocs0-" + name + ".pprof")
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		writeAllocs("allocs-" + name + ".pprof")
		runtime.MemProfileRate = 512 * 1024
		g, err := os.Create(filepath.Join(dir, "goroutine-"+name+".txt"))
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		_ = pprof.Lookup("goroutine").WriteTo(g, 1)
	}
}

// rusageSplit is the process's user and system CPU time so far.
func rusageSplit() (user, sys time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}
