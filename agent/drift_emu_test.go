package agent

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/pfapply/pfemu"
	"gwstated/pfapply/pfrule"
)

const emuConfig = `
cluster:
  name: solo
  on_etcd_loss: hold
  gossip: {insecure: true, bind: 127.0.0.1:%[1]d}
  etcd: {endpoints: [http://127.0.0.1:%[2]d], dial_timeout: 200ms, request_timeout: 200ms}
lan: {interface: dc0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: fxp0, gateway: 198.51.100.100}
  - {name: isp2, interface: fxp1, gateway: 203.0.113.200}
sticky: [{name: https, proto: tcp, ports: [443]}]
pf: {backend: pfctl, syntax: %[4]s, dir: %[3]s, drift_interval: 40ms}
metrics: {listen: ""}
nodes: {fw1: {}}
`

// TestDriftOnEmulatedPfctl runs the agent with the pfctl backend against
// the OpenBSD pfctl/route emulator: with both links up (loadbalance holds
// an automatic table) and nothing changed, 10 drift intervals reload
// nothing; an anchor changed by hand is reloaded by the next drift check.
func TestDriftOnEmulatedPfctl(t *testing.T) {
	for _, syntax := range []string{"openbsd", "legacy"} {
		t.Run(syntax, func(t *testing.T) { driftOnEmu(t, syntax) })
	}
}

func driftOnEmu(t *testing.T, syntax string) {
	dir := t.TempDir()
	d := pfrule.OpenBSD
	if syntax == "legacy" {
		d = pfrule.Legacy
	}
	emu := pfemu.New(pfemu.Options{Dialect: d, Seed: 7})
	emu.SetDefaultRoute(0, false, netip.MustParseAddr("198.51.100.100"))
	yaml := fmt.Sprintf(emuConfig, freePort(t), freePort(t), filepath.Join(dir, "pf"), syntax)
	node := &fakeNode{verdicts: make(chan cluster.VerdictRecord)}
	recs := make(chan cluster.AppliedRecord, 10)
	runAgent(t, dir, yaml, node, Options{
		Log:     slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Runner:  emu,
		Applied: func(r cluster.AppliedRecord) { recs <- r },
	})
	node.verdicts <- cluster.VerdictRecord{Verdict: linkstate.Verdict{Seq: 1,
		Links:  map[string]linkstate.LinkVerdict{"isp1": {State: linkstate.Up}, "isp2": {State: linkstate.Up}},
		Active: []string{"isp1", "isp2"}}}
	select {
	case r := <-recs:
		if r.Error != "" {
			t.Fatalf("apply: %s", r.Error)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("verdict not applied")
	}
	if lb := emu.Anchor("loadbalance"); lb == nil || len(lb.Tables) != 1 {
		t.Fatalf("loadbalance in pf: %+v", lb)
	}
	loadsBefore := emu.Anchor("loadbalance").Loads

	// 10 drift checks: each reads loadbalance with -sr.
	waitCalls(t, emu, func(cs []pfemu.Call) bool { return countReads(cs, "loadbalance") >= 10 })
	snap := emu.Snapshot()
	loads := 0
	for _, c := range snap.Calls {
		if slices.Contains(c.Args, "-f") {
			loads++
		}
	}
	// The first apply: 6 checks and 6 loads; the drift checks: none.
	if loads != 12 || emu.Anchor("loadbalance").Loads != loadsBefore {
		t.Errorf("%d drift checks ran %d pfctl -f in all, want the 12 of the first apply", countReads(snap.Calls, "loadbalance"), loads)
	}
	t.Logf("%s: %d drift checks, %d reloads", syntax, countReads(snap.Calls, "loadbalance"), loads-12)

	// Someone replaces the pool by hand: the next check reloads it.
	lb := emu.Anchor("loadbalance").Text
	edited := strings.Replace(lb, "203.0.113.200", "203.0.113.201", 1)
	if err := emu.ReplaceAnchorText("loadbalance", edited); err != nil {
		t.Fatal(err)
	}
	waitCalls(t, emu, func([]pfemu.Call) bool { a := emu.Anchor("loadbalance"); return a.Text == lb })
}

func countReads(cs []pfemu.Call, anchor string) int {
	n := 0
	for _, c := range cs {
		if slices.Equal(c.Args, []string{"-a", anchor, "-sr"}) {
			n++
		}
	}
	return n
}

// waitCalls waits, with a deadline, until ok holds for the emulator's calls.
func waitCalls(t *testing.T, emu *pfemu.Emu, ok func([]pfemu.Call) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok(emu.Snapshot().Calls) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached in 20 s; calls: %d", len(emu.Snapshot().Calls))
		}
		time.Sleep(10 * time.Millisecond) // polling state another goroutine changes, with a deadline
	}
}

// TestDemotionRefusedAndRetried: on the emulated OpenBSD, the carp group's
// counter is already 200 (rc(8)'s 128 and more), so ifconfig refuses the
// agent's carpdemote 100 (the kernel keeps the counter within 0-255); the
// agent logs the refusal with the counter and retries on its 2 s tick
// until the counter is lowered and the demotion goes through.
func TestDemotionRefusedAndRetried(t *testing.T) {
	dir := t.TempDir()
	emu := pfemu.New(pfemu.Options{Seed: 9})
	emu.SetDefaultRoute(0, false, netip.MustParseAddr("198.51.100.100"))
	emu.SetGroup("carp", 200)
	yaml := fmt.Sprintf(emuConfig, freePort(t), freePort(t), filepath.Join(dir, "pf"), "openbsd") + "carp: {group: carp, demote: 100}\n"
	node := &fakeNode{verdicts: make(chan cluster.VerdictRecord)}
	var logs syncBuffer
	runAgent(t, dir, yaml, node, Options{
		Log:    slog.New(slog.NewJSONHandler(&logs, nil)),
		Runner: emu,
	})
	node.verdicts <- cluster.VerdictRecord{Verdict: linkstate.Verdict{Seq: 1,
		Links:    map[string]linkstate.LinkVerdict{"isp1": {State: linkstate.Up}, "isp2": {State: linkstate.Up}},
		Active:   []string{"isp1", "isp2"},
		Impaired: []linkstate.Impairment{{Node: "fw1", Link: "isp1"}}}}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), `"counter":200`) {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged with the counter; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond) // polling the log another goroutine writes, with a deadline
	}
	if !strings.Contains(logs.String(), "carp demotion refused") {
		t.Errorf("refusal not worded: %s", logs.String())
	}
	if n, _ := emu.Demotion("carp"); n != 200 {
		t.Fatalf("counter %d after the refusal", n)
	}
	emu.SetGroup("carp", 20) // rc(8) took its 128 back
	for n, _ := emu.Demotion("carp"); n != 120; n, _ = emu.Demotion("carp") {
		if time.Now().After(deadline) {
			t.Fatalf("demotion not retried: counter %d", n)
		}
		time.Sleep(10 * time.Millisecond) // polling the emulator another goroutine changes, with a deadline
	}
}

// syncBuffer is a bytes.Buffer safe for the agent's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRestrictPathsTools: with Options.Tools (the lab's emulator) the
// programs unveiled are those, and the rules directory is writable.
func TestRestrictPathsTools(t *testing.T) {
	cfg, err := config.Parse([]byte(fmt.Sprintf(emuConfig, 7946, 2379, "/var/db/gwstated/pf", "openbsd")), "fw1")
	if err != nil {
		t.Fatal(err)
	}
	p := restrictPaths(Options{StateDir: "/var/db/gwstated", Tools: Tools{Pfctl: "/lab/fw1/pfctl", Route: "/lab/fw1/route",
		Ifconfig: "/lab/fw1/ifconfig", RulesDir: "/lab/fw1/rules"}}, cfg)
	if !slices.Equal(p.Exec, []string{"/lab/fw1/pfctl", "/lab/fw1/route", "/lab/fw1/ifconfig"}) || !slices.Contains(p.Write, "/lab/fw1/rules") {
		t.Errorf("paths %+v", p)
	}
	if p := restrictPaths(Options{StateDir: "/var/db/gwstated"}, cfg); !slices.Equal(p.Exec, DefaultExec) {
		t.Errorf("default exec %q", p.Exec)
	}
}
