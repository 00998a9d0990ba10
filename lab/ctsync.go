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

// State sync in the Linux lab (LinuxOptions.SharedNAT, Conntrackd): on
// every ISP segment a VRRP address that fw1 and fw2 share (WANAddress),
// moved by keepalived together with the LAN gateway (one sync group), and
// used as the link's nat_to, so a connection's NAT source does not change
// with the master; conntrackd on both firewalls (FTFW over UDP on the sync
// segment) copies every LAN connection's conntrack entry (NAT binding and
// gwstated's ct mark included) to the peer, and keepalived's notify lines
// run `gwctl ctsync master|backup|fault`, conntrackd's primary-backup
// hand-off: the new master commits its peer's connections into its kernel
// table. The ISP gateways reach the WAN addresses on their own segment
// (ARP; keepalived's gratuitous ARPs move them).

// WANAddress is the WAN-side VRRP address on isp's segment (198.18.<i>.10):
// the link's nat_to under SharedNAT.
func WANAddress(s ISP) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(s.Index), 10})
}

// WANAddresses returns every ISP's WANAddress by ISP name.
func WANAddresses(l *Lab) map[string]netip.Addr {
	m := map[string]netip.Addr{}
	for _, s := range l.ISPs() {
		m[s.Name] = WANAddress(s)
	}
	return m
}

// wanVRID is the VRRP router id of the WAN address on isp's segment.
func wanVRID(s ISP) int { return 60 + s.Index }

// ConntrackdPort is conntrackd's UDP port on the sync segment.
const ConntrackdPort = 3780

// strictTable is the nft table StrictConntrack installs: never gwstated's.
const strictTable = "gwlabct"

// StrictConntrack makes fw's connection tracking strict, as conntrackd's
// documentation asks of a synced pair: no TCP pick-up in the middle of a
// connection (nf_conntrack_tcp_loose 0) and packets conntrack finds
// invalid dropped on input and forward. Without it a packet of an
// established connection that reaches the new master before its entry is
// committed would start a new entry (a fresh mark, a fresh NAT binding)
// or, arriving for the WAN address, be answered with a reset by the
// firewall itself; with it, it is dropped and TCP sends it again.
func (l *Lab) StrictConntrack(ctx context.Context, fw string) error {
	ns := l.Netns(fw)
	if err := run(ctx, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_loose=0"); err != nil {
		return err
	}
	table := fmt.Sprintf(`table inet %[1]s
delete table inet %[1]s
table inet %[1]s {
	chain input {
		type filter hook input priority filter; policy accept;
		ct state invalid drop
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state invalid drop
	}
}
`, strictTable)
	if err := runStdin(ctx, table, "ip", "netns", "exec", ns, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("lab: strict conntrack in %s: %w", fw, err)
	}
	return nil
}

// safeLabPath reports whether p can go into keepalived's or conntrackd's
// configuration as is: absolute, no blanks, quotes, braces or comment
// characters.
func safeLabPath(p string) bool {
	return filepath.IsAbs(p) && !strings.ContainsAny(p, " \t\n\r\"'{}#!;\\")
}

// ConntrackdOptions render one firewall's conntrackd.conf.
type ConntrackdOptions struct {
	Node      string     // fw1, fw2: names the socket, lock and log files
	Interface string     // the sync segment's interface (sync0)
	Local     netip.Addr // this firewall's address on it
	Peer      netip.Addr // the other firewall's
	Dir       string     // where the UNIX socket, lock file and log go
	// Ignore are the addresses whose connections are not synced: the
	// firewalls' own (sync segment, uplinks, LAN) and loopback.
	Ignore []netip.Prefix
}

// ConntrackdSocket and ConntrackdLock are the per-node paths a conntrackd
// of the lab uses: one daemon per namespace, all on one file system.
func ConntrackdSocket(dir, node string) string {
	return filepath.Join(dir, "conntrackd-"+node+".ctl")
}

// ConntrackdConfig renders a conntrackd.conf for o: FTFW over unicast UDP
// to the peer (multicast works in namespaces too; unicast names the peer
// and needs no group), TCP and UDP connections synced, the firewalls' own
// connections ignored. Every value is checked first.
func ConntrackdConfig(o ConntrackdOptions) (string, error) {
	var errs []error
	if _, ok := VRRPPriority[o.Node]; !ok {
		errs = append(errs, fmt.Errorf("node %q: want one of fw1, fw2", o.Node))
	}
	if !validIfname(o.Interface) {
		errs = append(errs, fmt.Errorf("interface %q is not an interface name", o.Interface))
	}
	if !o.Local.Is4() || !o.Peer.Is4() || o.Local == o.Peer {
		errs = append(errs, fmt.Errorf("addresses %v, %v: want two IPv4 addresses", o.Local, o.Peer))
	}
	if !safeLabPath(o.Dir) {
		errs = append(errs, fmt.Errorf("dir %q: want an absolute path without blanks, quotes, braces or comment characters", o.Dir))
	}
	var ignore strings.Builder
	for _, p := range o.Ignore {
		if !p.IsValid() || !p.Addr().Is4() {
			errs = append(errs, fmt.Errorf("ignore %v: want an IPv4 prefix", p))
			continue
		}
		fmt.Fprintf(&ignore, "\t\t\tIPv4_address %s\n", p.Masked())
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("lab: conntrackd: %w", err)
	}
	base := filepath.Join(o.Dir, "conntrackd-"+o.Node)
	return fmt.Sprintf(`# conntrackd.conf for %[1]s, written by the gwstated lab (lab/ctsync.go)
Sync {
	Mode FTFW {
		ResendQueueSize 131072
	}
	UDP {
		IPv4_address %[2]s
		IPv4_Destination_Address %[3]s
		Port %[4]d
		Interface %[5]s
		SndSocketBuffer 1249280
		RcvSocketBuffer 1249280
		Checksum on
	}
}
General {
	HashSize 8192
	HashLimit 65536
	LogFile %[6]s.log
	Syslog off
	LockFile %[6]s.lock
	UNIX {
		Path %[7]s
	}
	NetlinkBufferSize 2097152
	NetlinkBufferSizeMaxGrowth 8388608
	Filter From Userspace {
		Protocol Accept {
			TCP
			UDP
		}
		Address Ignore {
%[8]s		}
	}
}
`, o.Node, o.Local, o.Peer, ConntrackdPort, o.Interface, base, ConntrackdSocket(o.Dir, o.Node), ignore.String()), nil
}

// ConntrackdConf is the path of fw's conntrackd.conf in the work directory.
func (c *Cluster) ConntrackdConf(fw string) string {
	return filepath.Join(c.opt.Dir, "conntrackd-"+fw+".conf")
}

// ConntrackdMissing returns why conntrackd cannot run here, or "".
func ConntrackdMissing() string {
	if _, err := exec.LookPath("conntrackd"); err != nil {
		return "state sync in the Linux lab needs conntrackd in PATH (apt-get install conntrackd)"
	}
	return ""
}

// StartConntrackd writes fw's conntrackd.conf and runs conntrackd in fw's
// namespace in the foreground (the harness owns it: Stop sends SIGTERM,
// after which it removes its lock file), then waits until it answers on
// its UNIX socket.
func (c *Cluster) StartConntrackd(ctx context.Context, fw string) error {
	bin, err := exec.LookPath("conntrackd")
	if err != nil {
		return fmt.Errorf("lab: %s", ConntrackdMissing())
	}
	var peer string
	for _, f := range []string{FW1, FW2} {
		if f != fw {
			peer = f
		}
	}
	ignore := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.PrefixFrom(c.Lab.SyncAddr(FW1), 24)}
	for _, f := range c.Lab.Firewalls() {
		ignore = append(ignore, netip.PrefixFrom(c.Lab.LANAddr(f), 32))
		for _, s := range c.Lab.ISPs() {
			ignore = append(ignore, netip.PrefixFrom(c.Lab.Uplink(f, s.Name).Addr4, 32))
		}
	}
	conf, err := ConntrackdConfig(ConntrackdOptions{
		Node: fw, Interface: "sync0", Local: c.Lab.SyncAddr(fw), Peer: c.Lab.SyncAddr(peer),
		Dir: c.opt.Dir, Ignore: ignore,
	})
	if err != nil {
		return err
	}
	path := c.ConntrackdConf(fw)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	name := "conntrackd-" + fw
	if err := c.startProc(name, fw, filepath.Join(c.opt.Dir, name+".out"), bin, []string{"-C", path}); err != nil {
		return err
	}
	return Wait(ctx, 10*time.Second, name+" answering", func() (bool, error) {
		if !c.Proc(name).Running() {
			b, _ := os.ReadFile(filepath.Join(c.opt.Dir, name+".log"))
			return false, fmt.Errorf("exited: %s", b)
		}
		err := run(ctx, "ip", "netns", "exec", c.Lab.Netns(fw), bin, "-C", path, "-s")
		return err == nil, err
	})
}

// Conntrackd runs `conntrackd -C <fw's conf> args...` in fw's namespace and
// returns its output: e.g. -s (statistics), -i (internal cache), -e
// (external cache).
func (c *Cluster) Conntrackd(ctx context.Context, fw string, args ...string) (string, error) {
	return output(ctx, "ip", append([]string{"netns", "exec", c.Lab.Netns(fw), "conntrackd", "-C", c.ConntrackdConf(fw)}, args...)...)
}

// WANInstance is one WAN-side VRRP instance of KeepalivedSyncOptions.
type WANInstance struct {
	Name      string     // instance name: the interface's
	Interface string     // wan0, ...
	Address   netip.Addr // WANAddress
	Prefix    int        // 24
	VRID      int        // 1..255
}

// KeepalivedSyncOptions render the keepalived.conf of a firewall whose LAN
// gateway and WAN addresses move together.
type KeepalivedSyncOptions struct {
	KeepalivedOptions // the LAN instance, as KeepalivedConfig
	WAN               []WANInstance
	// Notify, when set, is the command line (program first) keepalived
	// runs on every transition of the group, with master, backup or fault
	// appended: gwctl ctsync and its flags.
	Notify []string
}

// KeepalivedSyncConfig renders a keepalived.conf with one sync group: the
// LAN instance of KeepalivedConfig and one instance per WAN address, each
// tracking gwstated's track file (so they all lose priority together),
// and notify lines that run o.Notify. Every value is checked first.
func KeepalivedSyncConfig(o KeepalivedSyncOptions) (string, error) {
	lan, err := KeepalivedConfig(o.KeepalivedOptions)
	if err != nil {
		return "", err
	}
	var errs []error
	seen := map[int]bool{o.VRID: true}
	for _, w := range o.WAN {
		if !validIfname(w.Interface) || !validIfname(w.Name) {
			errs = append(errs, fmt.Errorf("wan instance %q on %q: not interface names", w.Name, w.Interface))
		}
		if !w.Address.Is4() || w.Prefix < 1 || w.Prefix > 32 {
			errs = append(errs, fmt.Errorf("wan address %v/%d: want an IPv4 address and a prefix length", w.Address, w.Prefix))
		}
		if w.VRID < 1 || w.VRID > 255 || seen[w.VRID] {
			errs = append(errs, fmt.Errorf("wan vrid %d: want 1..255, not used by another instance", w.VRID))
		}
		seen[w.VRID] = true
	}
	for _, a := range o.Notify {
		if a == "" || strings.ContainsAny(a, " \t\n\r\"'{}#!;\\") {
			errs = append(errs, fmt.Errorf("notify argument %q: want no blanks, quotes, braces or comment characters", a))
		}
	}
	if len(o.Notify) > 0 && !filepath.IsAbs(o.Notify[0]) {
		errs = append(errs, fmt.Errorf("notify program %q: want an absolute path", o.Notify[0]))
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("lab: keepalived: %w", err)
	}
	var b strings.Builder
	// The LAN instance is named "lan" by KeepalivedConfig.
	names := []string{"lan"}
	for _, w := range o.WAN {
		names = append(names, w.Name)
	}
	b.WriteString(strings.Replace(lan, "vrrp_instance lan {", "vrrp_sync_group gateway {\n\tgroup {\n\t\t"+strings.Join(names, "\n\t\t")+"\n\t}\n"+
		"\t# keepalived ignores a tracked file's weight in a sync group unless told:\n"+
		"\t# every instance tracks the same file with the same weight.\n"+
		"\tsync_group_tracking_weight\n"+notifyLines(o.Notify)+"}\n\nvrrp_instance lan {", 1))
	prio := VRRPPriority[o.Node]
	for _, w := range o.WAN {
		fmt.Fprintf(&b, `
vrrp_instance %[1]s {
	version 3
	state BACKUP
	interface %[2]s
	virtual_router_id %[3]d
	priority %[4]d
	advert_int %[5]s
	virtual_ipaddress {
		%[6]s/%[7]d dev %[2]s
	}
	track_file {
		gwstated
	}
}
`, w.Name, w.Interface, w.VRID, prio, o.AdvertInt, w.Address, w.Prefix)
	}
	return b.String(), nil
}

func notifyLines(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	var b strings.Builder
	for _, state := range []string{"master", "backup", "fault"} {
		fmt.Fprintf(&b, "\tnotify_%s \"%s %s\"\n", state, strings.Join(argv, " "), state)
	}
	return b.String()
}

// StartKeepalivedSync writes fw's keepalived.conf with the sync group
// (KeepalivedSyncConfig) and runs keepalived like StartKeepalived; when
// fw's conntrackd runs (StartConntrackd), the group's notify lines run
// gwctl ctsync with fw's conntrackd.conf.
func (c *Cluster) StartKeepalivedSync(fw, advertInt string) error {
	o := KeepalivedSyncOptions{KeepalivedOptions: KeepalivedOptions{
		Node: fw, Interface: "lan0", Address: LANGateway, Prefix: LANPrefix.Bits(),
		VRID: LANGatewayVRID, AdvertInt: advertInt, TrackFile: c.TrackFile(fw),
	}}
	for _, s := range c.Lab.ISPs() {
		dev := c.Lab.Uplink(fw, s.Name).Interface
		o.WAN = append(o.WAN, WANInstance{Name: dev, Interface: dev, Address: WANAddress(s), Prefix: s.Prefix4.Bits(), VRID: wanVRID(s)})
	}
	if c.Proc("conntrackd-"+fw) != nil {
		bin, err := exec.LookPath("conntrackd")
		if err != nil {
			return fmt.Errorf("lab: %s", ConntrackdMissing())
		}
		o.Notify = []string{c.opt.Bin.Gwctl, "ctsync", "--conntrackd", bin, "--conntrackd-config", c.ConntrackdConf(fw)}
	}
	conf, err := KeepalivedSyncConfig(o)
	if err != nil {
		return err
	}
	return c.startKeepalivedConf(fw, conf)
}

// startKeepalivedConf writes conf as fw's keepalived.conf and runs it.
func (c *Cluster) startKeepalivedConf(fw, conf string) error {
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

// startStateSync sets up SharedNAT (and Conntrackd) on both firewalls:
// strict conntrack, conntrackd, keepalived with the sync group.
func (c *Cluster) startStateSync(ctx context.Context, o LinuxOptions) error {
	for _, fw := range []string{FW1, FW2} {
		if err := c.Lab.StrictConntrack(ctx, fw); err != nil {
			return err
		}
		if o.Conntrackd {
			if err := c.StartConntrackd(ctx, fw); err != nil {
				return err
			}
		}
	}
	for _, fw := range []string{FW1, FW2} {
		if err := c.StartKeepalivedSync(fw, o.AdvertInt); err != nil {
			return err
		}
	}
	return c.WaitSharedMaster(ctx, FW1, 30*time.Second)
}

// SharedMaster returns the firewall that holds the LAN gateway and every
// WAN address ("" for none); the addresses split between the firewalls,
// or held by both, is an error.
func (c *Cluster) SharedMaster(ctx context.Context) (string, error) {
	want := []string{"lan0 " + LANGateway.String()}
	for _, s := range c.Lab.ISPs() {
		want = append(want, c.Lab.Uplink(FW1, s.Name).Interface+" "+WANAddress(s).String())
	}
	holds := map[string]int{}
	for _, fw := range c.Lab.Firewalls() {
		out, err := output(ctx, "ip", "-n", c.Lab.Netns(fw), "-4", "-o", "addr", "show")
		if err != nil {
			return "", err
		}
		for _, w := range want {
			dev, addr, _ := strings.Cut(w, " ")
			for line := range strings.Lines(out) {
				if f := strings.Fields(line); len(f) > 3 && f[1] == dev && strings.HasPrefix(f[3], addr+"/") {
					holds[fw]++
				}
			}
		}
	}
	var masters []string
	for fw, n := range holds {
		if n != len(want) {
			return "", fmt.Errorf("lab: %s holds %d of the %d shared addresses", fw, n, len(want))
		}
		masters = append(masters, fw)
	}
	switch len(masters) {
	case 0:
		return "", nil
	case 1:
		return masters[0], nil
	}
	return "", fmt.Errorf("lab: %v all hold the shared addresses", masters)
}

// WaitSharedMaster waits until fw alone holds every shared address.
func (c *Cluster) WaitSharedMaster(ctx context.Context, fw string, timeout time.Duration) error {
	return Wait(ctx, timeout, fw+" holds the LAN gateway and the WAN addresses", func() (bool, error) {
		m, err := c.SharedMaster(ctx)
		if err != nil {
			return false, err
		}
		return m == fw, fmt.Errorf("master is %q", m)
	})
}

// StartStreams runs a traffic client on the LAN host with only long-lived
// TCP streams (n of them, rate records per second each) to the internet
// host's TrafficStreamPort.
func (c *Cluster) StartStreams(bin, name string, n, rate int) (*TrafficRun, error) {
	r := &TrafficRun{c: c, name: name,
		report:     filepath.Join(c.opt.Dir, name+".json"),
		statusPath: filepath.Join(c.opt.Dir, name+".status.json")}
	os.Remove(r.report)
	os.Remove(r.statusPath)
	args := []string{"client", "--server", Internet4.String(), "--flows", "0", "--conn-rate", "0",
		"--streams", strconv.Itoa(n), "--stream-port", strconv.Itoa(TrafficStreamPort), "--stream-rate", strconv.Itoa(rate),
		"--report", r.report, "--status", r.statusPath}
	if err := c.startProc(name, "lan", filepath.Join(c.opt.Dir, name+".log"), bin, args); err != nil {
		return nil, err
	}
	return r, nil
}
