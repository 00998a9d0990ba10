package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/internal/atomicfile"
	"gwstated/internal/testkit"
	"gwstated/linkstate"
)

// singleAgent runs one agent whose config text the test can replace, with
// etcd at an address where nothing listens (etcd unreachable).
type singleAgent struct {
	mu     sync.Mutex
	yaml   string
	dir    string
	reload chan struct{}
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

const soloConfig = `
cluster:
  name: solo
  on_etcd_loss: hold
  gossip: {insecure: true, bind: 127.0.0.1:%[1]d}
  etcd: {endpoints: [http://127.0.0.1:%[2]d], dial_timeout: 200ms, request_timeout: 200ms}
lan: {interface: dc0, network: 192.168.0.0/24}
links:
  - {name: isp1, interface: fxp0, gateway: 198.51.100.100}
  - {name: isp2, interface: fxp1, gateway: 203.0.113.200}
sticky: [{name: https, proto: tcp, ports: [%[4]s]}]
pf: {backend: dir, dir: %[3]s}
metrics: {listen: ""}
nodes: {fw1: {}}
`

func (s *singleAgent) setPorts(t *testing.T, ports string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.yaml = strings.Replace(s.yaml, "ports: ["+s.portsNow()+"]", "ports: ["+ports+"]", 1)
}

func (s *singleAgent) portsNow() string {
	i := strings.Index(s.yaml, "ports: [")
	j := strings.Index(s.yaml[i:], "]")
	return s.yaml[i+len("ports: [") : i+j]
}

func startSolo(t *testing.T, state *stateFile) *singleAgent {
	t.Helper()
	dir := t.TempDir()
	s := &singleAgent{
		dir:    dir,
		yaml:   fmt.Sprintf(soloConfig, freePort(t), freePort(t), filepath.Join(dir, "anchors"), "443"),
		reload: make(chan struct{}),
		reg:    prometheus.NewRegistry(),
		done:   make(chan error, 1),
	}
	stateDir := filepath.Join(dir, "state")
	if state != nil {
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := writeState(atomicfile.WriteFile, stateDir, *state); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	opts := Options{
		StateDir: stateDir,
		Log:      slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Reload:   s.reload,
		Registry: s.reg,
		LoadConfig: func() (*config.Config, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return config.Parse([]byte(s.yaml), "fw1")
		},
		NewProber: func(*config.Config, *slog.Logger) (Prober, error) { return newScripted(), nil },
	}
	go func() { s.done <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func (s *singleAgent) anchor(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "anchors", name+".conf"))
	return string(b)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testkit.WaitFor(t, 15*time.Second, what, ok)
}

// A restarted node applies the verdict of its state file at once, even
// with etcd unreachable and no probe result yet: never "all down" at boot.
func TestBootAppliesStateFileWithoutEtcd(t *testing.T) {
	st := stateFile{Verdict: cluster.VerdictRecord{Verdict: linkstate.Verdict{
		Seq: 41,
		Links: map[string]linkstate.LinkVerdict{
			"isp1": {State: linkstate.Down, Observed: linkstate.Down},
			"isp2": {State: linkstate.Up, Observed: linkstate.Up},
		},
		Active: []string{"isp2"},
	}, Leader: "fw2"}}
	s := startSolo(t, &st)
	waitFor(t, "the state file's verdict in the anchors", func() bool {
		lb := s.anchor("loadbalance")
		return strings.Contains(lb, "203.0.113.200") && !strings.Contains(lb, "198.51.100.100") &&
			strings.TrimSpace(s.anchor("nat-isp1")) == ""
	})
	// applied.json is written last, after the anchors and the route.
	waitFor(t, "applied.json to record seq 41", func() bool {
		b, err := os.ReadFile(filepath.Join(s.dir, "anchors", "applied.json"))
		return err == nil && strings.Contains(string(b), `"seq":41`)
	})
}

// SIGHUP: an invalid config is refused and the old one keeps running; a
// valid one is applied.
func TestReload(t *testing.T) {
	st := stateFile{Verdict: cluster.VerdictRecord{Verdict: linkstate.Verdict{
		Seq: 7,
		Links: map[string]linkstate.LinkVerdict{
			"isp1": {State: linkstate.Up}, "isp2": {State: linkstate.Up},
		},
		Active: []string{"isp1", "isp2"},
	}}}
	s := startSolo(t, &st)
	waitFor(t, "port 443 in applications", func() bool { return strings.Contains(s.anchor("applications"), "port 443") })

	// A hostile port list is not a valid config: refused.
	s.setPorts(t, "443; pass in all")
	s.reload <- struct{}{}
	waitFor(t, "the invalid reload to be counted", func() bool {
		return reloads(s.reg, "invalid") == 1
	})
	if !strings.Contains(s.anchor("applications"), "port 443") {
		t.Fatalf("applications changed after an invalid reload:\n%s", s.anchor("applications"))
	}

	s.setPorts(t, "8443")
	s.reload <- struct{}{}
	waitFor(t, "port 8443 in applications", func() bool { return strings.Contains(s.anchor("applications"), "port 8443") })
}

// reloads reads gwstated_config_reloads_total{result} from reg.
func reloads(reg *prometheus.Registry, result string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "gwstated_config_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A failed apply is reported with its error and retried with backoff until
// it succeeds, without a new verdict.
func TestApplyRetried(t *testing.T) {
	dir := t.TempDir()
	anchors := filepath.Join(dir, "anchors")
	// A directory where the loadbalance anchor's file must go: the dir
	// backend's rename onto it fails until the test removes it.
	if err := os.MkdirAll(filepath.Join(anchors, "loadbalance.conf", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(soloConfig, freePort(t), freePort(t), anchors, "443")
	node := &fakeNode{verdicts: make(chan cluster.VerdictRecord)}
	recs := make(chan cluster.AppliedRecord, 100)
	runAgent(t, dir, yaml, node, Options{
		Log:     slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Backoff: pfapplyBackoff(20*time.Millisecond, 80*time.Millisecond),
		Applied: func(r cluster.AppliedRecord) { recs <- r },
	})
	node.verdicts <- cluster.VerdictRecord{Verdict: linkstate.Verdict{Seq: 3,
		Links:  map[string]linkstate.LinkVerdict{"isp1": {State: linkstate.Up}, "isp2": {State: linkstate.Up}},
		Active: []string{"isp1", "isp2"}}}
	timeout := time.After(15 * time.Second)
	for failures := 0; failures < 3; failures++ {
		select {
		case r := <-recs:
			if r.Error == "" {
				t.Fatalf("apply succeeded while loadbalance.conf is a directory: %+v", r)
			}
			if !strings.Contains(r.Error, "loadbalance") {
				t.Errorf("apply error does not name the anchor: %s", r.Error)
			}
		case <-timeout:
			t.Fatalf("the failed apply was retried %d times in 15 s, want 3 (backoff 20–80 ms)", failures)
		}
	}
	if err := os.RemoveAll(filepath.Join(anchors, "loadbalance.conf")); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(15 * time.Second)
	for {
		select {
		case r := <-recs:
			if r.Error == "" {
				if r.Seq != 3 {
					t.Fatalf("retry applied seq %d, want 3", r.Seq)
				}
				if !strings.Contains(readFile(t, filepath.Join(anchors, "loadbalance.conf")), "203.0.113.200") {
					t.Fatal("loadbalance.conf not written by the retry")
				}
				return
			}
		case <-deadline:
			t.Fatal("the failed apply was never retried successfully")
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
