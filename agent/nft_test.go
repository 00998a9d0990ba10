package agent

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/internal/netns"
	"gwstated/internal/testkit"
	"gwstated/linkstate"
	"gwstated/nftapply"
)

// linuxFirewall is a namespace with eth0 (LAN) and eth1/eth2 (uplinks),
// veth pairs up with their peers in the same namespace.
func linuxFirewall(t *testing.T) string {
	t.Helper()
	ns := netns.Scratch(t, "agentnft")
	run := func(args ...string) {
		t.Helper()
		netns.IP(t, args...)
	}
	run("netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	for _, l := range [][3]string{{"eth0", "lan0", "192.168.0.1/24"}, {"eth1", "up1", "198.51.100.198/24"}, {"eth2", "up2", "203.0.113.198/24"}} {
		run("-n", ns, "link", "add", l[0], "type", "veth", "peer", "name", l[1])
		run("-n", ns, "link", "set", l[0], "up")
		run("-n", ns, "link", "set", l[1], "up")
		run("-n", ns, "addr", "add", l[2], "dev", l[0])
	}
	return ns
}

const nftAgentConfig = `
cluster: {name: m, gossip: {insecure: true}, etcd: {endpoints: ["http://127.0.0.1:1"]}}
lan: {interface: eth0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: eth1, gateway: 198.51.100.100}
  - {name: isp2, interface: eth2, gateway: 203.0.113.200}
dataplane: nft
metrics: {listen: ""}
nodes: {fw1: {probe_source: {isp1: 198.51.100.198, isp2: 203.0.113.198}}}
`

// countingRunner counts the commands that write to the kernel.
type countingRunner struct {
	inner  nftapply.Runner
	mu     sync.Mutex
	writes []string
}

func (c *countingRunner) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	line := name + " " + strings.Join(args, " ")
	read := strings.Contains(line, " show") || strings.Contains(line, " list ") || strings.Contains(line, "-c -f") ||
		strings.Contains(line, "--version") || strings.HasPrefix(line, "sysctl -n ")
	if !read {
		c.mu.Lock()
		c.writes = append(c.writes, line)
		c.mu.Unlock()
	}
	return c.inner.Run(ctx, stdin, name, args...)
}

func (c *countingRunner) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

type nftAgent struct {
	node    *fakeNode
	applied chan cluster.AppliedRecord
	cancel  context.CancelFunc
	done    chan error
}

func startNFTAgent(t *testing.T, stateDir string, r nftapply.Runner) *nftAgent {
	t.Helper()
	return startNFTAgentWith(t, stateDir, r, func() string { return nftAgentConfig }, nil, nil)
}

func startNFTAgentWith(t *testing.T, stateDir string, r nftapply.Runner, yaml func() string, reload chan struct{}, reg *prometheus.Registry) *nftAgent {
	t.Helper()
	a := &nftAgent{node: &fakeNode{verdicts: make(chan cluster.VerdictRecord)}, applied: make(chan cluster.AppliedRecord, 16), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() {
		a.done <- Run(ctx, Options{
			StateDir:   stateDir,
			Log:        log,
			LoadConfig: func() (*config.Config, error) { return config.Parse([]byte(yaml()), "fw1") },
			Reload:     reload,
			Registry:   reg,
			NewProber:  func(*config.Config, *slog.Logger) (Prober, error) { return newScripted(), nil },
			NewNode:    func(*config.Config, *slog.Logger) (Node, error) { return a.node, nil },
			NFTRunner:  r,
			NFTables:   swapIn(r),
			Applied:    func(rec cluster.AppliedRecord) { a.applied <- rec },
		})
	}()
	return a
}

// swapIn is the netlink rule swap in the namespace a countingRunner's
// ExecRunner runs its commands in (the agent derives it itself for an
// ExecRunner); nil for any other runner.
func swapIn(r nftapply.Runner) nftapply.NFTables {
	if c, ok := r.(*countingRunner); ok {
		if er, ok := c.inner.(nftapply.ExecRunner); ok {
			return nftapply.NetlinkConn{Netns: er.Netns}
		}
	}
	return nil
}

func (a *nftAgent) stop(t *testing.T) {
	t.Helper()
	a.cancel()
	if err := <-a.done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func (a *nftAgent) send(t *testing.T, seq uint64, up ...string) cluster.AppliedRecord {
	t.Helper()
	v := linkstate.Verdict{Seq: seq, Links: map[string]linkstate.LinkVerdict{}, Active: up}
	for _, l := range []string{"isp1", "isp2"} {
		st := linkstate.Down
		for _, u := range up {
			if u == l {
				st = linkstate.Up
			}
		}
		v.Links[l] = linkstate.LinkVerdict{State: st}
	}
	select {
	case a.node.verdicts <- cluster.VerdictRecord{Verdict: v}:
	case err := <-a.done:
		t.Fatalf("agent stopped: %v", err)
	}
	select {
	case rec := <-a.applied:
		if rec.Error != "" {
			t.Fatalf("apply seq %d: %s", seq, rec.Error)
		}
		return rec
	case <-time.After(30 * time.Second):
		t.Fatalf("verdict seq %d never applied", seq)
	}
	return cluster.AppliedRecord{}
}

func listTable(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "gwstated").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table: %v: %s", err, out)
	}
	return string(out)
}

// TestAgentNFT runs the agent with dataplane: nft against a namespace:
// verdicts reach the kernel, SIGTERM (context end) leaves the kernel as
// it is, and a restarted agent adopts its table with no kernel write.
func TestAgentNFT(t *testing.T) {
	ns := linuxFirewall(t)
	state := filepath.Join(t.TempDir(), "state")
	r := &countingRunner{inner: nftapply.ExecRunner{Netns: ns}}

	a := startNFTAgent(t, state, r)
	rec := a.send(t, 1, "isp1", "isp2")
	if rec.Backend != "nft" || len(rec.Hash) != 64 {
		t.Errorf("applied record %+v", rec)
	}
	if tab := listTable(t, ns); !strings.Contains(tab, "numgen inc mod 2") {
		t.Errorf("both up: table\n%s", tab)
	}
	a.send(t, 2, "isp2")
	tab := listTable(t, ns)
	if strings.Contains(tab, `oifname "eth1"`) || !strings.Contains(tab, "ct mark set 0x00000101 comment") {
		t.Errorf("isp1 down: table\n%s", tab)
	}
	r.take()
	a.stop(t)
	if w := r.take(); len(w) > 0 {
		t.Errorf("shutdown wrote %q", w)
	}
	if after := listTable(t, ns); after != tab {
		t.Errorf("shutdown changed the table:\n%s", after)
	}

	// Restart: the state file's verdict is applied at boot; the kernel
	// already holds it, so nothing is written.
	b := startNFTAgent(t, state, r)
	select {
	case rec := <-b.applied:
		if rec.Error != "" || rec.Seq != 2 {
			t.Errorf("boot apply: %+v", rec)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no boot apply")
	}
	if w := r.take(); len(w) > 0 {
		t.Errorf("restart wrote %q, want no write (adopt)", w)
	}
	b.send(t, 3, "isp1", "isp2")
	if w := r.take(); len(w) == 0 {
		t.Error("a new verdict after restart wrote nothing")
	}
	b.stop(t)
}

// TestAgentNFTRefusesCollision: a rule in gwstated's priority range that
// is not its own stops the agent at start, naming the collision.
func TestAgentNFTRefusesCollision(t *testing.T) {
	ns := linuxFirewall(t)
	if out, err := exec.Command("ip", "-n", ns, "rule", "add", "priority", "101", "lookup", "42").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	a := startNFTAgent(t, filepath.Join(t.TempDir(), "state"), nftapply.ExecRunner{Netns: ns})
	var err error
	select {
	case err = <-a.done:
	case <-time.After(30 * time.Second):
		t.Fatal("agent started despite the collision")
	}
	a.cancel()
	if !errors.Is(err, nftapply.ErrCollision) || !strings.Contains(err.Error(), "ip rule at priority 101 (lookup 42)") {
		t.Errorf("want the collision named, got %v", err)
	}
}

// TestAgentNFTReload: a SIGHUP with a config that renders differently is
// applied; one that moves gwstated's ranges (nft.mark_base) is refused and
// the agent keeps the old config.
func TestAgentNFTReload(t *testing.T) {
	ns := linuxFirewall(t)
	var mu sync.Mutex
	yaml := nftAgentConfig + "sticky: [{name: https, proto: tcp, ports: [443]}]\n"
	get := func() string { mu.Lock(); defer mu.Unlock(); return yaml }
	set := func(y string) { mu.Lock(); yaml = y; mu.Unlock() }
	reload := make(chan struct{})
	reg := prometheus.NewRegistry()
	a := startNFTAgentWith(t, filepath.Join(t.TempDir(), "state"), nftapply.ExecRunner{Netns: ns}, get, reload, reg)
	defer a.stop(t)
	first := a.send(t, 1, "isp1", "isp2")

	set(strings.Replace(get(), "ports: [443]", "ports: [8443]", 1))
	reload <- struct{}{}
	select {
	case rec := <-a.applied:
		if rec.Error != "" || rec.Hash == first.Hash {
			t.Errorf("reload apply: %+v", rec)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a valid reload was not applied")
	}
	if tab := listTable(t, ns); !strings.Contains(tab, "tcp dport 8443") {
		t.Errorf("table after reload:\n%s", tab)
	}

	set(get() + "nft: {mark_base: 0x200}\n")
	reload <- struct{}{}
	testkit.WaitFor(t, 30*time.Second, "reload with new nft ranges refused", func() bool { return reloads(reg, "invalid") >= 1 })
	if tab := listTable(t, ns); !strings.Contains(tab, "0x00000100") || strings.Contains(tab, "0x00000200") {
		t.Errorf("refused reload changed the table:\n%s", tab)
	}
}
