// Command chaos (make chaos; root) runs the lab cluster (fw1, fw2,
// witness; separate etcd members) under a seeded random fault schedule and
// checks the invariants of issue 15 all the time. By default it is the
// real-traffic Linux lab (dataplane: nft, keepalived VRRP on the LAN, a
// traffic client sending UDP flows and TCP connections through the pair
// for the whole run: invariant 6); CHAOS_LAB=dir runs the dir-backend lab
// (no data plane, no traffic). The seed is printed; CHAOS_SEED replays a
// schedule, CHAOS_DURATION sets the length (default 10m), CHAOS_OUT writes
// the summary table (markdown) to a file. TestChaos runs 2 minutes of it
// in `make test`.
// Exit status 0: no invariant violated; 1: violations (listed); 2: the
// lab could not run.
package main

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	seed, dur, err := settings()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	fmt.Printf("chaos: seed %d (replay with CHAOS_SEED=%d), duration %v, lab %s\n", seed, seed, dur, cmp.Or(os.Getenv("CHAOS_LAB"), "linux"))
	labKind := os.Getenv("CHAOS_LAB")
	switch labKind {
	case "", "linux", "dir":
	default:
		fmt.Fprintf(os.Stderr, "chaos: CHAOS_LAB=%q: want linux (default) or dir\n", labKind)
		os.Exit(2)
	}
	rep, err := run(ctx, Options{Seed: seed, Duration: dur, Lab: labKind}, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	table := rep.Markdown()
	fmt.Print("\n" + table)
	if p := os.Getenv("CHAOS_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(table), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
		}
	}
	if len(rep.Violations) > 0 {
		os.Exit(1)
	}
}

func settings() (seed uint64, dur time.Duration, err error) {
	dur = 10 * time.Minute
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		if dur, err = time.ParseDuration(s); err != nil || dur < 30*time.Second {
			return 0, 0, fmt.Errorf("CHAOS_DURATION=%q: want a duration of at least 30s, e.g. 2m", s)
		}
	}
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("CHAOS_SEED=%q: want an unsigned integer", s)
		}
		return seed, dur, nil
	}
	var b [8]byte
	_, _ = crand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) >> 1, dur, nil
}
