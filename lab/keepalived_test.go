package lab

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func goodKeepalived() KeepalivedOptions {
	return KeepalivedOptions{Node: FW1, Interface: "lan0", Address: LANGateway, Prefix: 24, VRID: 51, AdvertInt: "0.1", TrackFile: "/run/gwstated/vrrp-track"}
}

// TestKeepalivedConfig renders fw1's config and has keepalived's own
// parser check it (keepalived -t) when keepalived is installed.
func TestKeepalivedConfig(t *testing.T) {
	conf, err := KeepalivedConfig(goodKeepalived())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"vrrp_track_file gwstated {\n\tfile /run/gwstated/vrrp-track\n\tweight -1",
		"version 3", "interface lan0", "virtual_router_id 51", "priority 110", "advert_int 0.1",
		"198.51.100.1/24 dev lan0", "track_file {\n\t\tgwstated\n\t}",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Log("keepalived not installed: its parser not run")
		return
	}
	// keepalived -t wants the interface to exist and to do multicast: use
	// one of this host's.
	var ifname string
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 && i.Flags&net.FlagMulticast != 0 && validIfname(i.Name) {
			ifname = i.Name
			break
		}
	}
	if ifname == "" {
		t.Log("no non-loopback interface here: keepalived's parser not run")
		return
	}
	o := goodKeepalived()
	o.Interface = ifname
	if conf, err = KeepalivedConfig(o); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("keepalived", "-t", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("keepalived -t: %v\n%s\n%s", err, out, conf)
	}
}

func TestKeepalivedConfigHostile(t *testing.T) {
	for name, mod := range map[string]func(*KeepalivedOptions){
		"node":            func(o *KeepalivedOptions) { o.Node = "fw3" },
		"interface":       func(o *KeepalivedOptions) { o.Interface = "lan0; reboot" },
		"interface brace": func(o *KeepalivedOptions) { o.Interface = "lan0}" },
		"address v6":      func(o *KeepalivedOptions) { o.Address = netip.MustParseAddr("2001:db8::1") },
		"no address":      func(o *KeepalivedOptions) { o.Address = netip.Addr{} },
		"prefix":          func(o *KeepalivedOptions) { o.Prefix = 33 },
		"vrid":            func(o *KeepalivedOptions) { o.VRID = 256 },
		"advert newline":  func(o *KeepalivedOptions) { o.AdvertInt = "0.1\n}" },
		"advert zero":     func(o *KeepalivedOptions) { o.AdvertInt = "0" },
		"advert word":     func(o *KeepalivedOptions) { o.AdvertInt = "fast" },
		"track relative":  func(o *KeepalivedOptions) { o.TrackFile = "run/track" },
		"track space":     func(o *KeepalivedOptions) { o.TrackFile = "/run/x y" },
		"track newline":   func(o *KeepalivedOptions) { o.TrackFile = "/run/x\n}" },
		"track quote":     func(o *KeepalivedOptions) { o.TrackFile = `/run/"x` },
		"track comment":   func(o *KeepalivedOptions) { o.TrackFile = "/run/#x" },
	} {
		o := goodKeepalived()
		mod(&o)
		if conf, err := KeepalivedConfig(o); err == nil {
			t.Errorf("%s: accepted:\n%s", name, conf)
		}
	}
	// every error at once
	_, err := KeepalivedConfig(KeepalivedOptions{})
	if err == nil {
		t.Fatal("empty options accepted")
	}
	for _, want := range []string{"node", "interface", "address", "prefix", "vrid", "advert_int", "track file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
