package lab

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
)

// The binaries every cluster test runs, built once per test process into a
// temporary directory that TestMain removes (removeBinaries).
var bins struct {
	once sync.Once
	dir  string
	b    Binaries
	err  error
}

func binaries(t *testing.T) Binaries {
	t.Helper()
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "gwlab-bin-")
		if bins.err == nil {
			bins.b, bins.err = Build(context.Background(), bins.dir)
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.b
}

func removeBinaries(int) {
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
}

// testLog writes harness actions to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startCluster builds a lab and starts a cluster in it; both are stopped
// when the test ends, and the agents' logs are shown when it failed.
func startCluster(t *testing.T, opt ClusterOptions) *Cluster {
	t.Helper()
	l := Start(t, Options{})
	opt.Bin = binaries(t)
	opt.Dir = t.TempDir()
	opt.Log = testLog{t}
	c, err := StartCluster(t.Context(), l, opt)
	if err != nil {
		dumpLogs(t, opt.Dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
		if t.Failed() {
			dumpLogs(t, opt.Dir)
		}
	})
	return c
}

// dumpLogs shows the last lines of every log in dir.
func dumpLogs(t *testing.T, dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		b, _ := os.ReadFile(dir + "/" + e.Name())
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("--- %s (last %d lines)\n%s", e.Name(), len(lines), strings.Join(lines, "\n"))
	}
}
