// Package netns holds what the tests of several packages (agent, nftapply,
// deploy, and the lab itself) need of network namespaces: whether they can
// be made here, the skip-or-require that CI turns into a failure, and a
// scratch namespace named like the lab's (Prefix<pid>-..., so that the
// lab's Sweep removes one a crashed run left), deleted when the test ends.
// The lab's topology, faults and cluster harness stay in package lab.
package netns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"gwstated/internal/testkit"
)

// Prefix starts the name of every namespace gwstated's tests create.
const Prefix = "gwlab-"

// Missing returns why network namespaces cannot be used here, or "" when
// they can: root, ip(8) and nft(8) are needed.
func Missing() string {
	if os.Geteuid() != 0 {
		return "the namespace lab needs root (network namespaces, raw ICMP, nft)"
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "the namespace lab needs " + tool + " in PATH (apt-get install iproute2 nftables)"
		}
	}
	return ""
}

// Require skips t when Missing says why, or fails it when
// GWSTATED_REQUIRE_LAB=1.
func Require(t testing.TB) {
	t.Helper()
	if why := Missing(); why != "" {
		testkit.SkipOrRequire(t, why)
	}
}

var seq atomic.Int64

// Scratch calls Require and creates an empty namespace
// Prefix<pid>-<tag><n> with lo up, deleted when the test ends; tag says
// which test made it (letters and digits).
func Scratch(t testing.TB, tag string) string {
	t.Helper()
	Require(t)
	name := fmt.Sprintf("%s%d-%s%d", Prefix, os.Getpid(), tag, seq.Add(1))
	IP(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	IP(t, "-n", name, "link", "set", "lo", "up")
	return name
}

// IP runs ip(8) with args and fails the test with its output when it fails.
func IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
