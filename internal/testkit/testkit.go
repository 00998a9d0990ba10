// Package testkit holds the helpers every package's tests share: waiting
// for a condition with a deadline, the skip that CI turns into a failure,
// and a line diff; testkit/golden holds golden files with an -update flag
// (apart, so that importing testkit adds no flag to a program such as the
// lab's commands).
package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// LineDiff shows the lines that differ between want and got.
func LineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
		}
	}
	return b.String()
}

// PollEvery is how often Wait tests its condition.
const PollEvery = 10 * time.Millisecond

// Wait tests cond every PollEvery until it returns true, ctx ends or
// timeout passes; then the error names what was awaited and the last
// error cond returned. Tests use it instead of sleeping.
func Wait(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	return WaitEvery(ctx, PollEvery, timeout, what, cond)
}

// WaitEvery is Wait testing cond every interval.
func WaitEvery(ctx context.Context, every, timeout time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tk := time.NewTicker(every)
	defer tk.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: not after %s: %w", what, timeout, last)
			}
			return fmt.Errorf("%s: not after %s", what, timeout)
		case <-tk.C:
		}
	}
}

// WaitFor is Wait that fails the test on timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := Wait(context.Background(), timeout, what, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatal(err)
	}
}

// EnvRequire makes SkipOrRequire fail instead of skip when set to 1 (CI).
const EnvRequire = "GWSTATED_REQUIRE_LAB"

// SkipOrRequire skips t because of why (something the test needs is not
// here), or fails it when GWSTATED_REQUIRE_LAB=1, so that a missing install
// step cannot pass unnoticed in CI.
func SkipOrRequire(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s (%s=1)", why, EnvRequire)
	}
	t.Skipf("%s; set %s=1 to fail instead of skip", why, EnvRequire)
}

// Log is the logger tests give the code under test: debug records to
// stderr with GWSTATED_TEST_LOG=1, else nowhere.
func Log() *slog.Logger {
	if os.Getenv("GWSTATED_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// FreeAddr is a loopback TCP address nothing listens on (yet).
func FreeAddr(t testing.TB) string {
	t.Helper()
	freeMu.Lock()
	defer freeMu.Unlock()
	// The kernel may hand the port it just gave out, and which was closed
	// again, to the next Listen: peer and client URLs of one etcd member
	// came out equal ("bind: address already in use"). Never return a
	// port twice in one test process.
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !freeGiven[addr] {
			freeGiven[addr] = true
			return addr
		}
	}
	t.Fatal("testkit.FreeAddr: no new loopback port in 100 tries")
	return ""
}

var (
	freeMu    sync.Mutex
	freeGiven = map[string]bool{}
)
