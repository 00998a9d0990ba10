package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gwstated/config"
	"gwstated/internal/netns"
	"gwstated/internal/testkit"
	"gwstated/nftapply"
)

// renderNFTExample is the golden text of a dataplane: nft example: per
// combination of links up, the nft table, routes, rules and default route.
func renderNFTExample(t *testing.T, cfg *config.Config) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# Rendered by deploy/examples_test.go (go test ./deploy -update), dataplane nft, node %s.\n", cfg.Node)
	fmt.Fprintf(&b, "# Each case: the links every probing node sees up; all others down.\n")
	for _, c := range everyCombination(cfg.Links) {
		v := verdictFor(cfg, c.up)
		p, err := nftapply.Render(cfg, v)
		if err != nil {
			t.Fatalf("%s: Render: %v", c, err)
		}
		fmt.Fprintf(&b, "\n=== %s\nactive: %s", c, strings.Join(v.Active, " "))
		if v.ActiveReason != "" {
			fmt.Fprintf(&b, " (%s)", v.ActiveReason)
		}
		fmt.Fprintf(&b, "\n%s", p.Table)
		for _, r := range p.Routes {
			fmt.Fprintf(&b, "ip route: %s\n", r)
		}
		for _, r := range p.Rules {
			fmt.Fprintf(&b, "ip rule: %s\n", r)
		}
		fmt.Fprintf(&b, "default route: %s\n", p.DefaultRoute)
	}
	return b.String()
}

// exampleNetns makes a namespace with eth0, eth1 and eth2 (veth pairs),
// the interfaces the Linux examples name.
func exampleNetns(t *testing.T) string {
	t.Helper()
	ns := netns.Scratch(t, "deploy")
	for i := range 3 {
		netns.IP(t, "-n", ns, "link", "add", fmt.Sprintf("eth%d", i), "type", "veth", "peer", "name", fmt.Sprintf("p%d", i))
	}
	return ns
}

// TestLinuxExampleNft runs the table of every link combination of
// linux-pair.yaml through nft -c.
func TestLinuxExampleNft(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("examples", "linux-pair.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data, "fw1")
	if err != nil {
		t.Fatal(err)
	}
	ns := exampleNetns(t)
	for _, c := range everyCombination(cfg.Links) {
		p, err := nftapply.Render(cfg, verdictFor(cfg, c.up))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-c", "-f", "-")
		cmd.Stdin = strings.NewReader(nftapply.Script(p))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: nft -c: %v\n%s", c, err, out)
		}
	}
}

// TestKeepalivedExample checks keepalived.conf with keepalived -t in a
// namespace holding its interfaces: no error, no warning; its track file
// and VRRP addresses are linux-pair.yaml's.
func TestKeepalivedExample(t *testing.T) {
	conf := filepath.Join("examples", "keepalived.conf")
	text, err := os.ReadFile(conf)
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
	want := []string{"file " + cfg.VRRP.TrackFile, "weight -1", "interface " + cfg.LAN.Interface}
	for _, a := range cfg.VRRP.Addresses {
		want = append(want, a.String()+"/")
	}
	for _, l := range cfg.Links {
		want = append(want, l.NatTo.String()+"/24 dev "+l.Interface)
	}
	for _, w := range want {
		if !strings.Contains(string(text), w) {
			t.Errorf("keepalived.conf lacks %q (from linux-pair.yaml)", w)
		}
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		testkit.SkipOrRequire(t, "keepalived not installed (lab/install-deps.sh)")
	}
	ns := exampleNetns(t)
	check := func(path string) (string, error) {
		out, err := exec.Command("ip", "netns", "exec", ns, "keepalived", "-t", "-f", path).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := check(conf); err != nil || out != "" {
		t.Errorf("keepalived -t -f %s: %v\n%s", conf, err, out)
	}
	// The check can fail: a misspelt option is refused.
	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(text), "gwstated weight -1", "gwstated wieght -1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := check(bad); err == nil && out == "" {
		t.Error("keepalived -t accepts a misspelt track_file option")
	}
}
