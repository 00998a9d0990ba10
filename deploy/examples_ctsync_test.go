package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gwstated/config"
)

// TestConntrackdExample checks conntrackd.conf against linux-pair.yaml
// (its sync addresses are the nodes', every address of the routers
// themselves is ignored) and keepalived.conf's notify lines, then starts
// conntrackd on it in a namespace holding fw1's address on eth0 (with its
// socket and lock file moved into a temporary directory): conntrackd has
// no check mode, so its parser runs by starting it; it must answer -s.
func TestConntrackdExample(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("examples", "conntrackd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("examples", "linux-pair.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data, "fw1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"IPv4_address 192.168.0.2 ", "IPv4_Destination_Address 192.168.0.3 ", "Interface " + cfg.LAN.Interface + "\n"}
	for _, a := range cfg.VRRP.Addresses {
		want = append(want, "IPv4_address "+a.String()+" ")
	}
	for _, l := range cfg.Links {
		want = append(want, "IPv4_address "+l.NatTo.String()+" ")
	}
	for _, n := range cfg.Nodes {
		for _, a := range n.ProbeSource {
			want = append(want, "IPv4_address "+a.String())
		}
	}
	for _, w := range want {
		if !strings.Contains(string(text), w) {
			t.Errorf("conntrackd.conf lacks %q (from linux-pair.yaml)", w)
		}
	}
	kconf, err := os.ReadFile(filepath.Join("examples", "keepalived.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, state := range []string{"master", "backup", "fault"} {
		if !regexp.MustCompile(`(?m)^\s*notify_` + state + ` +"/usr/bin/gwctl ctsync ` + state + `"`).Match(kconf) {
			t.Errorf("keepalived.conf has no notify_%s line running gwctl ctsync %s", state, state)
		}
	}

	bin := needTool(t, "conntrackd", "conntrackd")
	ns := exampleNetns(t)
	for _, args := range [][]string{{"addr", "add", "192.168.0.2/24", "dev", "eth0"}, {"link", "set", "eth0", "up"}, {"link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	dir := t.TempDir()
	local := strings.NewReplacer(
		"LockFile /var/lock/conntrack.lock", "LockFile "+filepath.Join(dir, "lock"),
		"Path /var/run/conntrackd.ctl", "Path "+filepath.Join(dir, "ctl"),
		"Syslog on", "Syslog off\n\tLogFile "+filepath.Join(dir, "log"),
	).Replace(string(text))
	if local == string(text) || strings.Count(local, dir) != 3 {
		t.Fatalf("the example's lock file, socket or log no longer read as the test expects:\n%s", text)
	}
	conf := filepath.Join(dir, "conntrackd.conf")
	if err := os.WriteFile(conf, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "-C", conf)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = exec.Command("ip", "netns", "exec", ns, bin, "-C", conf, "-k").Run()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("conntrackd exited on the example: %v\n%s\n%s", err, out, log)
		case <-ctx.Done():
			t.Fatalf("conntrackd did not answer -s in 10s\n%s", out)
		case <-tick.C:
		}
		if st, err := exec.Command("ip", "netns", "exec", ns, bin, "-C", conf, "-s").CombinedOutput(); err == nil && strings.Contains(string(st), "cache internal") {
			return
		}
	}
}
