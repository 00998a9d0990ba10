package agent

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gwstated/cluster"
	"gwstated/internal/testkit"
	"gwstated/linkstate"
	"gwstated/nftapply"
)

// roleNode is a fakeNode that keeps what SetCARP reported.
type roleNode struct {
	fakeNode
	mu   sync.Mutex
	carp []cluster.CARPStatus
}

func (n *roleNode) SetCARP(c []cluster.CARPStatus) {
	n.mu.Lock()
	n.carp = c
	n.mu.Unlock()
}

func (n *roleNode) role() []cluster.CARPStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.carp
}

// TestAgentVRRP: an impaired node writes vrrp.demote into the track file
// and 0 when it recovers; the role is MASTER while a VRRP address is on
// the node, BACKUP when it moved away, gossiped as the "vrrp" entry.
func TestAgentVRRP(t *testing.T) {
	ns := linuxFirewall(t)
	dir := t.TempDir()
	track := filepath.Join(dir, "run", "vrrp-track")
	yaml := nftAgentConfig + "vrrp: {track_file: " + track + ", addresses: [192.168.0.254], demote: 50}\n"
	vip := netip.MustParseAddr("192.168.0.254")
	var mu sync.Mutex
	holds := true
	local := func() ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		if holds {
			return []netip.Addr{netip.MustParseAddr("192.168.0.1"), vip}, nil
		}
		return []netip.Addr{netip.MustParseAddr("192.168.0.1")}, nil
	}
	node := &roleNode{fakeNode: fakeNode{verdicts: make(chan cluster.VerdictRecord)}}
	applied := make(chan cluster.AppliedRecord, 16)
	runAgent(t, dir, yaml, node, Options{
		Log:        slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		NFTRunner:  nftapply.ExecRunner{Netns: ns},
		LocalAddrs: local,
		Applied:    func(rec cluster.AppliedRecord) { applied <- rec },
	})
	send := func(seq uint64, impaired bool) {
		t.Helper()
		v := linkstate.Verdict{Seq: seq, Active: []string{"isp1", "isp2"}, Links: map[string]linkstate.LinkVerdict{
			"isp1": {State: linkstate.Up}, "isp2": {State: linkstate.Up}}}
		if impaired {
			v.Impaired = []linkstate.Impairment{{Node: "fw1", Link: "isp1"}}
		}
		node.verdicts <- cluster.VerdictRecord{Verdict: v}
		if rec := <-applied; rec.Error != "" {
			t.Fatalf("seq %d: %s", seq, rec.Error)
		}
	}
	file := func() string { b, _ := os.ReadFile(track); return string(b) }
	send(1, false)
	if got := file(); got != "0\n" {
		t.Errorf("healthy: track file %q, want 0", got)
	}
	send(2, true)
	// The demotion is held back for the link's detection time (see
	// agent.demote), then written.
	if got := file(); got != "0\n" {
		t.Errorf("just impaired: track file %q, want 0 during the hold", got)
	}
	testkit.WaitFor(t, 15*time.Second, "track file 50 after the hold", func() bool { return file() == "50\n" })
	testkit.WaitFor(t, 15*time.Second, "role MASTER", func() bool {
		r := node.role()
		return len(r) == 1 && r[0] == cluster.CARPStatus{Interface: "vrrp", State: "MASTER"}
	})
	mu.Lock()
	holds = false
	mu.Unlock()
	send(3, false)
	if got := file(); got != "0\n" {
		t.Errorf("recovered: track file %q, want 0", got)
	}
	testkit.WaitFor(t, 15*time.Second, "role BACKUP", func() bool {
		r := node.role()
		return len(r) == 1 && r[0] == cluster.CARPStatus{Interface: "vrrp", State: "BACKUP"}
	})
}
