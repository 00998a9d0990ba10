package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gwstated.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--log-format", "xml", "--check", "--config", "/nonexistent"},
		{"--log-level", "loud", "--check"},
		{"stray"},
		{"--no-such-flag"},
	} {
		var stderr bytes.Buffer
		if code := run(args, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
		if stderr.Len() == 0 {
			t.Errorf("%q: no message on stderr", args)
		}
	}
}

func TestCheck(t *testing.T) {
	good := writeConfig(t, `
cluster: {name: c, gossip: {insecure: true}, etcd: {endpoints: [http://127.0.0.1:2379]}}
lan: {interface: dc0, network: 192.168.0.0/24}
links: [{name: isp1, interface: fxp0, gateway: 198.51.100.100}]
nodes: {fw1: {}}
`)
	var stderr bytes.Buffer
	if code := run([]string{"--check", "--config", good, "--node", "fw1"}, &stderr); code != 0 {
		t.Fatalf("valid config: exit %d: %s", code, stderr.String())
	}
	bad := writeConfig(t, `
cluster: {name: c, gossip: {insecure: true}, etcd: {endpoints: [http://127.0.0.1:2379]}}
lan: {interface: "dc0; reboot", network: 192.168.0.5/24}
links: [{name: isp1, interface: fxp0, gateway: x}]
`)
	stderr.Reset()
	if code := run([]string{"--check", "--config", bad, "--node", "fw1"}, &stderr); code != 2 {
		t.Fatalf("invalid config: exit %d, want 2", code)
	}
	for _, want := range []string{"lan.interface", "lan.network", "links[0].gateway"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// An invalid config at start is a configuration error (exit 2) before
// anything is touched.
func TestStartWithInvalidConfig(t *testing.T) {
	bad := writeConfig(t, "links: []\nunknown_key: 1\n")
	var stderr bytes.Buffer
	if code := run([]string{"--config", bad, "--state-dir", t.TempDir()}, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "unknown_key") {
		t.Errorf("stderr does not name the unknown key:\n%s", stderr.String())
	}
}
