package nftapply_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"gwstated/nftapply"
)

// TestCheckCollisions creates, in a namespace, state that uses gwstated's
// marks, routing tables and rule priorities; Check refuses to start and
// names every collision. A clean host, and a host holding gwstated's own
// state from an earlier run, pass.
func TestCheckCollisions(t *testing.T) {
	ns := firewall(t, false)
	ctx := t.Context()
	cfg := parseConfig(t, yamlRecipe)
	run := nftapply.ExecRunner{Netns: ns}
	if err := nftapply.Check(ctx, run, cfg); err != nil {
		t.Fatalf("clean host: %v", err)
	}
	p, err := nftapply.Render(cfg, verdict(cfg, []string{"isp1"}, []string{"isp1"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nftapply.NewApplier(run, nftapply.OptionsFromConfig(cfg, nil)).Apply(ctx, p, 1); err != nil {
		t.Fatal(err)
	}
	if err := nftapply.Check(ctx, run, cfg); err != nil {
		t.Fatalf("gwstated's own state is no collision: %v", err)
	}

	mustRun(t, "ip", "-n", ns, "rule", "add", "priority", "102", "from", "10.9.0.0/16", "lookup", "55")
	mustRun(t, "ip", "-n", ns, "rule", "add", "priority", "300", "fwmark", "0x101", "lookup", "55")
	mustRun(t, "ip", "-n", ns, "rule", "add", "priority", "301", "iif", "eth0", "lookup", "100")
	mustRun(t, "ip", "-n", ns, "route", "add", "10.0.0.0/8", "via", "203.0.113.7", "dev", "eth2", "table", "101")
	inNetns(t, ns, "nft", "add", "table", "ip", "vpn")
	inNetns(t, ns, "nft", "add", "chain", "ip", "vpn", "pre", "{ type filter hook prerouting priority 0; }")
	inNetns(t, ns, "nft", "add", "rule", "ip", "vpn", "pre", "meta", "mark", "set", "0x100")

	inNetns(t, ns, "nft", "delete", "table", "inet", "gwstated")
	inNetns(t, ns, "nft", "add", "table", "inet", "gwstated")

	err = nftapply.Check(ctx, run, cfg)
	if !errors.Is(err, nftapply.ErrCollision) {
		t.Fatalf("want ErrCollision, got %v", err)
	}
	for _, want := range []string{
		"ip rule at priority 102 (from 10.9.0.0/16 lookup 55) is in gwstated's range 100-104 (nft.rule_priority) and is not gwstated's",
		"ip rule at priority 300 (fwmark 0x101 lookup 55) matches mark 0x101, link isp2's mark (nft.mark_base)",
		"ip rule at priority 301 (iif eth0 lookup 100) looks up table 100, link isp1's routing table (nft.table_base)",
		"routing table 101 (link isp2, nft.table_base) holds 10.0.0.0/8 via 203.0.113.7 dev eth2, not gwstated's",
		"nft table ip vpn uses mark 0x00000100 (link isp1) (nft.mark_base): meta mark set 0x00000100",
		"nft table inet gwstated exists and is not gwstated's",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing: %s\nin:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 6 {
		t.Errorf("%d problems, want 6:\n%v", n, err)
	}
}

// missingRunner fails the named tools as os/exec does when they are not
// installed, and runs everything else for real in a namespace.
type missingRunner struct {
	inner   nftapply.Runner
	missing []string
}

func (m missingRunner) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	for _, x := range m.missing {
		if x == name {
			return nil, &nftapply.CmdError{Cmd: name, Args: args, Exit: -1, Err: &exec.Error{Name: name, Err: exec.ErrNotFound}}
		}
	}
	return m.inner.Run(ctx, stdin, name, args...)
}

func TestCheckMissingTools(t *testing.T) {
	ns := firewall(t, false)
	cfg := parseConfig(t, yamlRecipe)
	err := nftapply.Check(t.Context(), missingRunner{nftapply.ExecRunner{Netns: ns}, []string{"nft", "conntrack"}}, cfg)
	if !errors.Is(err, nftapply.ErrMissing) {
		t.Fatalf("want ErrMissing, got %v", err)
	}
	for _, want := range []string{"nft(8) is not installed", "conntrack(8) is needed with nft.kill_states: true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	err = nftapply.Check(t.Context(), missingRunner{nftapply.ExecRunner{Netns: ns}, []string{"ip"}}, cfg)
	if err == nil || !strings.Contains(err.Error(), "policy routing: ip(8) is not installed") {
		t.Errorf("ip missing: %v", err)
	}
	// kill_states off: conntrack is not needed.
	cfg.NFT.KillStates = false
	if err := nftapply.Check(t.Context(), missingRunner{nftapply.ExecRunner{Netns: ns}, []string{"conntrack"}}, cfg); err != nil {
		t.Errorf("kill_states: false without conntrack: %v", err)
	}
}

// TestCheckHostSettings: forwarding off, or strict rp_filter on an uplink,
// stops the start with what to set.
func TestCheckHostSettings(t *testing.T) {
	ns := firewall(t, false)
	cfg := parseConfig(t, yamlRecipe)
	run := nftapply.ExecRunner{Netns: ns}
	inNetns(t, ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0", "net.ipv4.conf.eth2.rp_filter=1")
	err := nftapply.Check(t.Context(), run, cfg)
	if !errors.Is(err, nftapply.ErrMissing) {
		t.Fatalf("want ErrMissing, got %v", err)
	}
	for _, want := range []string{
		"net.ipv4.ip_forward is 0: this host does not forward the LAN's traffic (sysctl -w net.ipv4.ip_forward=1)",
		"strict reverse-path filtering (rp_filter 1) on eth2 (link isp2)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "on eth1") {
		t.Errorf("eth1 is loose but reported:\n%v", err)
	}
	inNetns(t, ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.eth2.rp_filter=2")
	if err := nftapply.Check(t.Context(), run, cfg); err != nil {
		t.Errorf("loose rp_filter and forwarding on: %v", err)
	}
}
