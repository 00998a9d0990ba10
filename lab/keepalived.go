package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// VRRPPriority is each firewall's keepalived priority: fw1 is the
// preferred master. A demotion of 50 (gwstated's vrrp.demote default)
// written into fw1's track file drops it to 60, below fw2.
var VRRPPriority = map[string]int{FW1: 110, FW2: 100}

// KeepalivedOptions render one firewall's keepalived.conf.
type KeepalivedOptions struct {
	Node      string     // fw1, fw2: router_id and priority (VRRPPriority)
	Interface string     // the LAN interface (lan0)
	Address   netip.Addr // the VRRP address (LANGateway)
	Prefix    int        // its prefix length on Interface (24)
	VRID      int        // 1..255
	// AdvertInt is the advertisement interval in seconds, e.g. "0.1"
	// (VRRPv3: centiseconds).
	AdvertInt string
	TrackFile string // gwstated's vrrp.track_file for this node
}

// KeepalivedConfig renders a keepalived.conf for o: one VRRPv3 instance
// with the LAN address, preempting, whose priority is lowered by the
// number in the track file (weight -1). Every value is checked first:
// nothing unchecked reaches the file keepalived parses.
func KeepalivedConfig(o KeepalivedOptions) (string, error) {
	var errs []error
	prio, ok := VRRPPriority[o.Node]
	if !ok {
		errs = append(errs, fmt.Errorf("node %q: want one of fw1, fw2", o.Node))
	}
	if !validIfname(o.Interface) {
		errs = append(errs, fmt.Errorf("interface %q is not an interface name", o.Interface))
	}
	if !o.Address.Is4() {
		errs = append(errs, fmt.Errorf("address %v: want an IPv4 address", o.Address))
	}
	if o.Prefix < 1 || o.Prefix > 32 {
		errs = append(errs, fmt.Errorf("prefix /%d: want 1..32", o.Prefix))
	}
	if o.VRID < 1 || o.VRID > 255 {
		errs = append(errs, fmt.Errorf("vrid %d: want 1..255", o.VRID))
	}
	if f, err := strconv.ParseFloat(o.AdvertInt, 64); err != nil || f < 0.01 || f > 40.95 || strings.ContainsAny(o.AdvertInt, " \n\t{}\"#!") {
		errs = append(errs, fmt.Errorf("advert_int %q: want seconds, 0.01..40.95", o.AdvertInt))
	}
	if !filepath.IsAbs(o.TrackFile) || strings.ContainsAny(o.TrackFile, " \t\n\"'{}#!;\\") {
		errs = append(errs, fmt.Errorf("track file %q: want an absolute path without blanks, quotes, braces or comment characters", o.TrackFile))
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("lab: keepalived: %w", err)
	}
	return fmt.Sprintf(`# keepalived.conf for %[1]s, written by the gwstated lab (lab/keepalived.go)
global_defs {
	router_id %[1]s
	vrrp_garp_master_delay 1
	vrrp_garp_master_repeat 3
}

# gwstated writes 0, or vrrp.demote when this node is impaired.
vrrp_track_file gwstated {
	file %[2]s
	weight -1
	init_file 0
}

vrrp_instance lan {
	version 3
	state BACKUP
	interface %[3]s
	virtual_router_id %[4]d
	priority %[5]d
	advert_int %[6]s
	virtual_ipaddress {
		%[7]s/%[8]d dev %[3]s
	}
	track_file {
		gwstated
	}
}
`, o.Node, o.TrackFile, o.Interface, o.VRID, prio, o.AdvertInt, o.Address, o.Prefix), nil
}

// KeepalivedMissing returns why keepalived cannot run here, or "".
func KeepalivedMissing() string {
	if _, err := exec.LookPath("keepalived"); err != nil {
		return "the Linux lab needs keepalived in PATH (apt-get install keepalived)"
	}
	return ""
}

// StartKeepalived writes fw's keepalived.conf into the cluster's work
// directory and runs keepalived in fw's namespace in the foreground
// (`keepalived -n -l -P -f conf` with its pid files in the work
// directory): the harness owns it like any of its processes (Stop sends
// SIGTERM, which makes keepalived give up the address; Kill does not).
// trackFile is the file gwstated's vrrp.track_file names for fw.
func (c *Cluster) StartKeepalived(fw, advertInt, trackFile string) error {
	conf, err := KeepalivedConfig(KeepalivedOptions{
		Node: fw, Interface: "lan0", Address: LANGateway, Prefix: LANPrefix.Bits(),
		VRID: LANGatewayVRID, AdvertInt: advertInt, TrackFile: trackFile,
	})
	if err != nil {
		return err
	}
	dir := c.opt.Dir
	path := filepath.Join(dir, "keepalived-"+fw+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	name := "keepalived-" + fw
	args := []string{"-n", "-l", "-D", "-G", "-P", "-f", path,
		"-p", filepath.Join(dir, name+".pid"), "-r", filepath.Join(dir, name+"-vrrp.pid"),
		"-c", filepath.Join(dir, name+"-checkers.pid"), "-b", filepath.Join(dir, name+"-bfd.pid")}
	return c.startProc(name, fw, filepath.Join(dir, name+".log"), "keepalived", args)
}

// VRRPMaster returns the firewall that holds LANGateway on its lan0 ("" for
// none); both holding it is an error.
func (c *Cluster) VRRPMaster(ctx context.Context) (string, error) {
	var holders []string
	for _, fw := range c.Lab.Firewalls() {
		out, err := output(ctx, "ip", "-n", c.Lab.Netns(fw), "-4", "-o", "addr", "show", "dev", "lan0")
		if err != nil {
			return "", err
		}
		if strings.Contains(out, " "+LANGateway.String()+"/") {
			holders = append(holders, fw)
		}
	}
	switch len(holders) {
	case 0:
		return "", nil
	case 1:
		return holders[0], nil
	}
	return "", fmt.Errorf("lab: %v all hold the VRRP address %s", holders, LANGateway)
}

// WaitVRRPMaster waits until fw alone holds the VRRP address.
func (c *Cluster) WaitVRRPMaster(ctx context.Context, fw string, timeout time.Duration) error {
	return Wait(ctx, timeout, fw+" VRRP master", func() (bool, error) {
		m, err := c.VRRPMaster(ctx)
		if err != nil {
			return false, err
		}
		return m == fw, fmt.Errorf("master is %q", m)
	})
}

// VRRPMasterEntries counts the times fw's keepalived entered MASTER state
// (its log), e.g. to tell whether the LAN gateway moved during a cut.
func (c *Cluster) VRRPMasterEntries(fw string) (int, error) {
	b, err := os.ReadFile(filepath.Join(c.opt.Dir, "keepalived-"+fw+".log"))
	if err != nil {
		return 0, fmt.Errorf("lab: %w", err)
	}
	return strings.Count(string(b), "Entering MASTER STATE"), nil
}
