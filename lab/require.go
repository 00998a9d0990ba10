package lab

import (
	"context"
	"gwstated/internal/netns"
	"gwstated/internal/testkit"
	"testing"
)

// EnvRequire makes Require fail instead of skip when set to 1.
const EnvRequire = testkit.EnvRequire

// Missing returns why the lab cannot run here, or "" when it can
// (internal/netns: root, ip, nft).
func Missing() string { return netns.Missing() }

// Require skips t when the lab cannot run here, or fails it when
// GWSTATED_REQUIRE_LAB=1.
func Require(t testing.TB) {
	t.Helper()
	netns.Require(t)
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
