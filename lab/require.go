package lab

import (
	"context"
	"gwstated/internal/testkit"
	"os"
	"os/exec"
	"testing"
)

// EnvRequire makes Require fail instead of skip when set to 1.
const EnvRequire = testkit.EnvRequire

// Missing returns why the lab cannot run here, or "" when it can.
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

// Require skips t when the lab cannot run here, or fails it when
// GWSTATED_REQUIRE_LAB=1.
func Require(t testing.TB) {
	t.Helper()
	why := Missing()
	if why == "" {
		return
	}
	testkit.SkipOrRequire(t, why)
}

// Start calls Require, sweeps namespaces left by crashed runs, builds a
// lab and closes it when the test ends.
func Start(t testing.TB, opt Options) *Lab {
	t.Helper()
	Require(t)
	ctx := context.Background()
	if _, err := Sweep(ctx); err != nil {
		t.Logf("lab: sweep: %v", err)
	}
	l, err := New(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab: close: %v", err)
		}
	})
	return l
}
