package lab

import (
	"context"
	"errors"
	"fmt"
	"gwstated/internal/netns"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// NamePrefix starts the name of every namespace the lab creates.
const NamePrefix = netns.Prefix

// NetnsDir is where iproute2 keeps named network namespaces.
const NetnsDir = "/var/run/netns"

// The internet host: present behind every ISP gateway.
var (
	Internet4 = netip.MustParseAddr("203.0.113.1")
	Internet6 = netip.MustParseAddr("2001:db8:ffff::1")
)

// Options chooses the lab's size. Zero values take the defaults.
type Options struct {
	ISPs      int // number of ISPs (gateway namespaces); default 2, at most 9
	Firewalls int // number of firewall namespaces; default 2, at most 9
	NoWitness bool
	NoLAN     bool
}

// ISP is one ISP: its gateway namespace and segment.
type ISP struct {
	Name     string       // isp1, isp2, ...
	Index    int          // 1-based
	Netns    string       // namespace name
	Gateway4 netip.Addr   // on the gateway's br0
	Gateway6 netip.Addr   //
	Prefix4  netip.Prefix // the segment
	Prefix6  netip.Prefix //
}

// Uplink is one firewall's interface on one ISP segment.
type Uplink struct {
	Firewall  string
	ISP       string
	Interface string // wan0, wan1, ...
	Addr4     netip.Addr
	Addr6     netip.Addr
	Table     int // policy routing table for this source
}

// Lab is a running namespace lab. Its methods are safe for concurrent use.
type Lab struct {
	id   string // gwlab-<pid>-<n>-
	opt  Options
	isps []ISP
	fws  []string
	mu   sync.Mutex
	ns   []string // created namespaces, in creation order
	done bool
}

var labSeq atomic.Int64

// New builds the lab. On error everything created so far is removed.
func New(ctx context.Context, opt Options) (*Lab, error) {
	if opt.ISPs == 0 {
		opt.ISPs = 2
	}
	if opt.Firewalls == 0 {
		opt.Firewalls = 2
	}
	if opt.ISPs < 1 || opt.ISPs > 9 || opt.Firewalls < 1 || opt.Firewalls > 9 {
		return nil, fmt.Errorf("lab: %d ISPs and %d firewalls: each must be 1..9", opt.ISPs, opt.Firewalls)
	}
	l := &Lab{
		id:  fmt.Sprintf("%s%d-%d-", NamePrefix, os.Getpid(), labSeq.Add(1)),
		opt: opt,
	}
	for i := 1; i <= opt.ISPs; i++ {
		l.isps = append(l.isps, ISP{
			Name:     "isp" + strconv.Itoa(i),
			Index:    i,
			Netns:    l.id + "isp" + strconv.Itoa(i),
			Gateway4: netip.MustParseAddr(fmt.Sprintf("198.18.%d.1", i)),
			Gateway6: netip.MustParseAddr(fmt.Sprintf("2001:db8:%d::1", i)),
			Prefix4:  netip.MustParsePrefix(fmt.Sprintf("198.18.%d.0/24", i)),
			Prefix6:  netip.MustParsePrefix(fmt.Sprintf("2001:db8:%d::/64", i)),
		})
	}
	for k := 1; k <= opt.Firewalls; k++ {
		l.fws = append(l.fws, "fw"+strconv.Itoa(k))
	}
	register(l)
	if err := l.build(ctx); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// Netns returns the namespace name of a role: fw1, isp1, witness, lan.
func (l *Lab) Netns(role string) string { return l.id + role }

// NetnsPath returns the bind-mount path of a role's namespace, for setns(2).
func (l *Lab) NetnsPath(role string) string { return filepath.Join(NetnsDir, l.Netns(role)) }

// Firewalls returns the firewall roles: fw1, fw2, ...
func (l *Lab) Firewalls() []string { return slices.Clone(l.fws) }

// ISPs returns the ISPs in order.
func (l *Lab) ISPs() []ISP { return slices.Clone(l.isps) }

// ISP returns the ISP named name (isp1, ...).
func (l *Lab) ISP(name string) (ISP, bool) {
	for _, s := range l.isps {
		if s.Name == name {
			return s, true
		}
	}
	return ISP{}, false
}

// Uplink returns firewall fw's uplink to isp. It panics on unknown names:
// they are programming errors in a test.
func (l *Lab) Uplink(fw, isp string) Uplink {
	k := slices.Index(l.fws, fw)
	s, ok := l.ISP(isp)
	if k < 0 || !ok {
		panic(fmt.Sprintf("lab: no uplink %s/%s", fw, isp))
	}
	host := 10 + k + 1
	return Uplink{
		Firewall:  fw,
		ISP:       isp,
		Interface: "wan" + strconv.Itoa(s.Index-1),
		Addr4:     netip.MustParseAddr(fmt.Sprintf("198.18.%d.%d", s.Index, host)),
		Addr6:     netip.MustParseAddr(fmt.Sprintf("2001:db8:%d::%d", s.Index, host)),
		Table:     100 + s.Index,
	}
}

// SyncAddr returns a firewall's (or the witness's) address on the sync segment.
func (l *Lab) SyncAddr(role string) netip.Addr {
	if role == "witness" {
		return netip.MustParseAddr("192.0.2.100")
	}
	k := slices.Index(l.fws, role)
	if k < 0 {
		panic("lab: no sync address for " + role)
	}
	return netip.AddrFrom4([4]byte{192, 0, 2, byte(k + 1)})
}

// LANAddr returns a firewall's (or the lan host's) address on the LAN.
func (l *Lab) LANAddr(role string) netip.Addr {
	if role == "lan" {
		return netip.MustParseAddr("198.51.100.100")
	}
	k := slices.Index(l.fws, role)
	if k < 0 {
		panic("lab: no LAN address for " + role)
	}
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(k + 2)})
}

// LANPrefix is the LAN network.
var LANPrefix = netip.MustParsePrefix("198.51.100.0/24")

// Command returns a command that runs name with args inside a role's
// namespace (via `ip netns exec`). Close kills it if it still runs.
func (l *Lab) Command(ctx context.Context, role, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.Netns(role), name}, args...)...)
}

func (l *Lab) addNetns(ctx context.Context, role string) error {
	name := l.Netns(role)
	if err := run(ctx, "ip", "netns", "add", name); err != nil {
		return err
	}
	l.mu.Lock()
	l.ns = append(l.ns, name)
	l.mu.Unlock()
	return run(ctx, "ip", "-n", name, "link", "set", "lo", "up")
}

// bridge creates br0 in role's namespace, addressed with addrs.
func (l *Lab) bridge(ctx context.Context, role string, addrs ...string) error {
	ns := l.Netns(role)
	if err := run(ctx, "ip", "-n", ns, "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0"); err != nil {
		return err
	}
	if err := run(ctx, "ip", "-n", ns, "link", "set", "br0", "up"); err != nil {
		return err
	}
	for _, a := range addrs {
		if err := addAddr(ctx, ns, "br0", a); err != nil {
			return err
		}
	}
	return nil
}

// port links interface ifname in firewall fw to bridge br0 in role's
// namespace (the bridge port is named after the firewall), and addresses it.
func (l *Lab) port(ctx context.Context, fw, ifname, role string, addrs ...string) error {
	fwns, ns := l.Netns(fw), l.Netns(role)
	if err := run(ctx, "ip", "-n", fwns, "link", "add", ifname, "type", "veth", "peer", "name", fw, "netns", ns); err != nil {
		return err
	}
	if err := run(ctx, "ip", "-n", ns, "link", "set", fw, "master", "br0", "up"); err != nil {
		return err
	}
	if err := run(ctx, "ip", "-n", fwns, "link", "set", ifname, "up"); err != nil {
		return err
	}
	for _, a := range addrs {
		if err := addAddr(ctx, fwns, ifname, a); err != nil {
			return err
		}
	}
	return nil
}

func addAddr(ctx context.Context, ns, dev, addr string) error {
	p := netip.MustParsePrefix(addr)
	if p.Addr().Is6() {
		return run(ctx, "ip", "-n", ns, "-6", "addr", "add", addr, "dev", dev, "nodad")
	}
	return run(ctx, "ip", "-n", ns, "addr", "add", addr, "dev", dev)
}

func (l *Lab) build(ctx context.Context) error {
	for _, fw := range l.fws {
		if err := l.addNetns(ctx, fw); err != nil {
			return err
		}
	}
	for _, s := range l.isps {
		if err := l.addNetns(ctx, s.Name); err != nil {
			return err
		}
		if err := l.bridge(ctx, s.Name, s.Gateway4.String()+"/24", s.Gateway6.String()+"/64"); err != nil {
			return err
		}
		if err := addAddr(ctx, s.Netns, "lo", Internet4.String()+"/32"); err != nil {
			return err
		}
		if err := addAddr(ctx, s.Netns, "lo", Internet6.String()+"/128"); err != nil {
			return err
		}
		for _, fw := range l.fws {
			u := l.Uplink(fw, s.Name)
			if err := l.port(ctx, fw, u.Interface, s.Name, u.Addr4.String()+"/24", u.Addr6.String()+"/64"); err != nil {
				return err
			}
			if err := l.policyRoute(ctx, u, s); err != nil {
				return err
			}
		}
	}
	last := l.isps[len(l.isps)-1]
	for _, fw := range l.fws {
		ns, dev := l.Netns(fw), l.Uplink(fw, last.Name).Interface
		if err := run(ctx, "ip", "-n", ns, "route", "add", "default", "via", last.Gateway4.String(), "dev", dev); err != nil {
			return err
		}
		if err := run(ctx, "ip", "-n", ns, "-6", "route", "add", "default", "via", last.Gateway6.String(), "dev", dev); err != nil {
			return err
		}
	}
	if !l.opt.NoWitness {
		if err := l.segment(ctx, "witness", "sync0", l.SyncAddr); err != nil {
			return err
		}
	}
	if !l.opt.NoLAN {
		if err := l.segment(ctx, "lan", "lan0", l.LANAddr); err != nil {
			return err
		}
	}
	return nil
}

// segment makes role's namespace with a bridge joining every firewall's ifname.
func (l *Lab) segment(ctx context.Context, role, ifname string, addr func(string) netip.Addr) error {
	if err := l.addNetns(ctx, role); err != nil {
		return err
	}
	if err := l.bridge(ctx, role, addr(role).String()+"/24"); err != nil {
		return err
	}
	for _, fw := range l.fws {
		if err := l.port(ctx, fw, ifname, role, addr(fw).String()+"/24"); err != nil {
			return err
		}
	}
	return nil
}

// policyRoute routes traffic sourced from the uplink's addresses via its
// ISP's gateway, whatever the main table says.
func (l *Lab) policyRoute(ctx context.Context, u Uplink, s ISP) error {
	ns, table := l.Netns(u.Firewall), strconv.Itoa(u.Table)
	for _, fam := range []struct {
		flag, src, gw string
	}{{"-4", u.Addr4.String(), s.Gateway4.String()}, {"-6", u.Addr6.String(), s.Gateway6.String()}} {
		if err := run(ctx, "ip", "-n", ns, fam.flag, "rule", "add", "from", fam.src, "table", table, "priority", table); err != nil {
			return err
		}
		if err := run(ctx, "ip", "-n", ns, fam.flag, "route", "add", "default", "via", fam.gw, "dev", u.Interface, "table", table); err != nil {
			return err
		}
	}
	return nil
}

// Close kills processes left in the lab's namespaces and deletes them. It
// is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return nil
	}
	l.done = true
	ns := slices.Clone(l.ns)
	l.mu.Unlock()
	defer unregister(l)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, n := range slices.Backward(ns) {
		if err := deleteNetns(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// IP runs `ip -n <role's namespace> args...`, e.g. to add addresses or
// routes a test needs beyond the standard topology.
func (l *Lab) IP(ctx context.Context, role string, args ...string) error {
	return run(ctx, "ip", append([]string{"-n", l.Netns(role)}, args...)...)
}
