package main

import (
	crand "crypto/rand"
	"encoding/binary"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gwstated/internal/testkit"
	"gwstated/lab"
)

// TestChaos is the CI run of `make chaos`: two minutes of the seeded
// schedule on the real-traffic Linux lab (nft, keepalived, traffic
// throughout), every invariant checked, the summary logged. The seed is
// random and logged (CHAOS_SEED replays it, here and with make chaos);
// CHAOS_DURATION lengthens it. It needs root, ip, nft, keepalived and
// conntrack: it skips without them, and fails when GWSTATED_REQUIRE_LAB=1.
func TestChaos(t *testing.T) {
	lab.Require(t)
	if why := lab.KeepalivedMissing(); why != "" {
		testkit.SkipOrRequire(t, why)
	}
	if _, err := exec.LookPath("conntrack"); err != nil {
		testkit.SkipOrRequire(t, "the Linux lab needs conntrack (apt-get install conntrack)")
	}
	o := Options{Duration: 2 * time.Minute, Lab: "linux"}
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 30*time.Second {
			t.Fatalf("CHAOS_DURATION=%q: want a duration of at least 30s", s)
		}
		o.Duration = d
	}
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: want an unsigned integer", s)
		}
		o.Seed = seed
	} else {
		var b [8]byte
		_, _ = crand.Read(b[:])
		o.Seed = binary.LittleEndian.Uint64(b[:]) >> 1
	}
	t.Logf("chaos seed %d (replay: CHAOS_SEED=%d go test ./lab/chaos -run TestChaos, or make chaos), %v", o.Seed, o.Seed, o.Duration)
	var log syncBuilder
	rep, err := run(t.Context(), o, &log)
	t.Log("\n" + log.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.Markdown())
	for _, v := range rep.Violations {
		t.Errorf("seed %d: invariant violated: %s", o.Seed, v)
	}
	for _, e := range rep.InjectErrors {
		t.Errorf("seed %d: fault not injected: %s", o.Seed, e)
	}
	if rep.Converged == 0 {
		t.Errorf("seed %d: no quiet window checked for convergence", o.Seed)
	}
}

// syncBuilder collects the run's log lines, written by its goroutines.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
