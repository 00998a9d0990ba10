package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gwstated/internal/testkit"
	"gwstated/lab/traffic"
)

var trafficBin struct {
	once sync.Once
	path string
	err  error
}

// gwtraffic builds the traffic tool once per test process, next to the
// other binaries (removed by TestMain).
func gwtraffic(t *testing.T) string {
	t.Helper()
	binaries(t)
	trafficBin.once.Do(func() { trafficBin.path, trafficBin.err = BuildTraffic(context.Background(), bins.dir) })
	if trafficBin.err != nil {
		t.Fatal(trafficBin.err)
	}
	return trafficBin.path
}

// requireLinux is Require plus keepalived and conntrack.
func requireLinux(t *testing.T) {
	t.Helper()
	Require(t)
	why := KeepalivedMissing()
	if _, err := exec.LookPath("conntrack"); why == "" && err != nil {
		why = "the Linux lab needs conntrack (apt-get install conntrack)"
	}
	if why != "" {
		testkit.SkipOrRequire(t, why)
	}
}

// writeTrack writes a keepalived track file the way gwstated does
// (a whole number, replaced atomically).
func writeTrack(t *testing.T, path, value string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestLinuxStaticTraffic is the namespace test of the routed lab, the
// traffic tool and keepalived, without gwstated: the firewalls run
// StaticNAT (balance + masquerade written by hand), keepalived gives fw1
// the LAN gateway address, and the LAN host's flows and connections reach
// the internet host through both ISPs. Writing 50 into fw1's track file
// (what gwstated does on an impaired node) moves the address to fw2 and
// the flows continue through fw2; writing 0 brings it back.
func TestLinuxStaticTraffic(t *testing.T) {
	requireLinux(t)
	bin := gwtraffic(t)
	l := Start(t, Options{})
	ctx := t.Context()
	if err := l.RouteLAN(ctx); err != nil {
		t.Fatal(err)
	}
	for _, fw := range l.Firewalls() {
		if err := l.StaticNAT(ctx, fw); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	c := NewHarness(l, dir, testLog{t})
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			dumpLogs(t, dir)
		}
	})
	track := map[string]string{}
	for _, fw := range l.Firewalls() {
		track[fw] = filepath.Join(dir, fw+"-vrrp-track")
		writeTrack(t, track[fw], "0")
		if err := c.StartKeepalived(fw, "0.1", track[fw]); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitVRRPMaster(ctx, FW1, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.StartServers(ctx, bin); err != nil {
		t.Fatal(err)
	}
	run, err := c.StartClient(bin, TrafficOptions{Flows: 10, ConnRate: 100})
	if err != nil {
		t.Fatal(err)
	}
	var zero traffic.Status
	if err := run.WaitStatus(ctx, 30*time.Second, "every flow echoed and 200 connections", func(st traffic.Status) bool {
		return FlowsReceivedSince(zero, 100, "")(st) && st.Conns["isp1"]+st.Conns["isp2"] >= 200
	}); err != nil {
		t.Fatal(err)
	}

	// fw1 impaired: keepalived moves the gateway address to fw2.
	demoted := time.Now()
	writeTrack(t, track[FW1], "50")
	if err := c.WaitVRRPMaster(ctx, FW2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	base, err := run.Status()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.WaitStatus(ctx, 20*time.Second, "every flow echoed through fw2", FlowsReceivedSince(base, 100, "")); err != nil {
		t.Fatal(err)
	}
	writeTrack(t, track[FW1], "0")
	if err := c.WaitVRRPMaster(ctx, FW1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	base, err = run.Status()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.WaitStatus(ctx, 20*time.Second, "every flow echoed through fw1 again", FlowsReceivedSince(base, 100, "")); err != nil {
		t.Fatal(err)
	}
	rep, err := run.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("address on fw2 %v after the demotion; back on fw1 %v after it was taken back", moved.Sub(demoted).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))

	// Connections spread over both ISPs (round-robin marks).
	n := traffic.CountByISP(rep.Conns)
	total := n["isp1"] + n["isp2"]
	for _, isp := range []string{"isp1", "isp2"} {
		if share := float64(n[isp]) / float64(total); share < 0.35 || share > 0.65 {
			t.Errorf("%s carried %d of %d connections", isp, n[isp], total)
		}
	}
	// Every flow went through fw1 (198.18.x.11), then fw2 (.12), then fw1.
	for _, f := range rep.Flows {
		var srcs []string
		for _, s := range f.Segments {
			if len(srcs) == 0 || srcs[len(srcs)-1] != l.FirewallOf(s.Source) {
				srcs = append(srcs, l.FirewallOf(s.Source))
			}
		}
		if len(srcs) != 3 || srcs[0] != FW1 || srcs[1] != FW2 || srcs[2] != FW1 {
			t.Errorf("flow %d went through %v, want [fw1 fw2 fw1]", f.Flow, srcs)
		}
		for _, g := range f.Gaps {
			if g.Open {
				t.Errorf("flow %d did not resume: %+v", f.Flow, g)
			}
		}
		t.Logf("flow %d: sent %d lost %d longest gap %v via %v", f.Flow, f.Sent, f.Lost, f.LongestGap.Round(time.Millisecond), f.ISPs())
	}
	t.Logf("connections: %v, outages: %+v", n, traffic.ConnOutages(rep.Conns))
}
