package testkit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	n := 0
	if err := Wait(context.Background(), 5*time.Second, "third call", func() (bool, error) { n++; return n >= 3, nil }); err != nil || n != 3 {
		t.Errorf("Wait: %v after %d calls, want nil after 3", err, n)
	}
	boom := errors.New("boom")
	err := Wait(context.Background(), 30*time.Millisecond, "never", func() (bool, error) { return false, boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "never: not after 30ms") {
		t.Errorf("Wait timeout: %v, want it to name what and wrap the last error", err)
	}
}

func TestLineDiff(t *testing.T) {
	if d := LineDiff("a\nb\n", "a\nc\n"); d != "line 2:\n  want: b\n  got:  c\n" {
		t.Errorf("LineDiff: %q", d)
	}
}
