package lab

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gwstated/internal/testkit"
	"gwstated/lab/traffic"
)

func goodKeepalivedSync() KeepalivedSyncOptions {
	return KeepalivedSyncOptions{
		KeepalivedOptions: goodKeepalived(),
		WAN: []WANInstance{
			{Name: "wan0", Interface: "wan0", Address: netip.MustParseAddr("198.18.1.10"), Prefix: 24, VRID: 61},
			{Name: "wan1", Interface: "wan1", Address: netip.MustParseAddr("198.18.2.10"), Prefix: 24, VRID: 62},
		},
		Notify: []string{"/usr/sbin/gwctl", "ctsync", "--conntrackd-config", "/etc/conntrackd/conntrackd.conf"},
	}
}

// TestKeepalivedSyncConfig renders the sync group and has keepalived's
// parser check it (keepalived -t) when keepalived is installed, with every
// instance on one of this host's interfaces.
func TestKeepalivedSyncConfig(t *testing.T) {
	conf, err := KeepalivedSyncConfig(goodKeepalivedSync())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"vrrp_sync_group gateway {\n\tgroup {\n\t\tlan\n\t\twan0\n\t\twan1\n\t}\n",
		"\tnotify_master \"/usr/sbin/gwctl ctsync --conntrackd-config /etc/conntrackd/conntrackd.conf master\"\n",
		"\tnotify_backup \"/usr/sbin/gwctl ctsync --conntrackd-config /etc/conntrackd/conntrackd.conf backup\"\n",
		"\tnotify_fault \"/usr/sbin/gwctl ctsync --conntrackd-config /etc/conntrackd/conntrackd.conf fault\"\n",
		"vrrp_instance lan {", "vrrp_instance wan0 {\n\tversion 3\n\tstate BACKUP\n\tinterface wan0\n\tvirtual_router_id 61\n\tpriority 110",
		"198.18.2.10/24 dev wan1",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if n := strings.Count(conf, "track_file {\n\t\tgwstated\n\t}"); n != 3 {
		t.Errorf("%d instances track gwstated's file, want 3:\n%s", n, conf)
	}
	o := goodKeepalivedSync()
	o.Notify = nil
	if conf, _ := KeepalivedSyncConfig(o); strings.Contains(conf, "notify") {
		t.Errorf("notify lines without Notify:\n%s", conf)
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Log("keepalived not installed: its parser not run")
		return
	}
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
	o = goodKeepalivedSync()
	o.Interface = ifname
	for i := range o.WAN {
		o.WAN[i].Interface = ifname
	}
	if conf, err = KeepalivedSyncConfig(o); err != nil {
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

func TestKeepalivedSyncConfigHostile(t *testing.T) {
	for name, mod := range map[string]func(*KeepalivedSyncOptions){
		"lan instance":    func(o *KeepalivedSyncOptions) { o.Interface = "lan0; reboot" },
		"wan interface":   func(o *KeepalivedSyncOptions) { o.WAN[0].Interface = "wan0}" },
		"wan name":        func(o *KeepalivedSyncOptions) { o.WAN[1].Name = "wan1\nvrrp_script x {" },
		"wan address v6":  func(o *KeepalivedSyncOptions) { o.WAN[0].Address = netip.MustParseAddr("2001:db8::1") },
		"wan prefix":      func(o *KeepalivedSyncOptions) { o.WAN[0].Prefix = 0 },
		"wan vrid dup":    func(o *KeepalivedSyncOptions) { o.WAN[1].VRID = 61 },
		"wan vrid lan":    func(o *KeepalivedSyncOptions) { o.WAN[0].VRID = 51 },
		"wan vrid range":  func(o *KeepalivedSyncOptions) { o.WAN[0].VRID = 300 },
		"notify quote":    func(o *KeepalivedSyncOptions) { o.Notify[2] = `--x"` },
		"notify newline":  func(o *KeepalivedSyncOptions) { o.Notify[3] = "/etc/c.conf\n}" },
		"notify space":    func(o *KeepalivedSyncOptions) { o.Notify[3] = "/etc/c d.conf" },
		"notify semi":     func(o *KeepalivedSyncOptions) { o.Notify[1] = "ctsync;reboot" },
		"notify empty":    func(o *KeepalivedSyncOptions) { o.Notify[1] = "" },
		"notify relative": func(o *KeepalivedSyncOptions) { o.Notify[0] = "gwctl" },
	} {
		o := goodKeepalivedSync()
		mod(&o)
		if conf, err := KeepalivedSyncConfig(o); err == nil {
			t.Errorf("%s: accepted:\n%s", name, conf)
		}
	}
}

func goodConntrackd() ConntrackdOptions {
	return ConntrackdOptions{
		Node: FW1, Interface: "sync0", Local: netip.MustParseAddr("192.0.2.1"), Peer: netip.MustParseAddr("192.0.2.2"),
		Dir: "/run/lab", Ignore: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/24")},
	}
}

// TestConntrackdConfig checks the rendered text; conntrackd has no
// configuration check mode: its parser runs when the lab starts it
// (TestLinuxStateSync).
func TestConntrackdConfig(t *testing.T) {
	conf, err := ConntrackdConfig(goodConntrackd())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Mode FTFW {", "IPv4_address 192.0.2.1\n", "IPv4_Destination_Address 192.0.2.2\n", "Port 3780\n", "Interface sync0\n",
		"LockFile /run/lab/conntrackd-fw1.lock\n", "Path /run/lab/conntrackd-fw1.ctl\n", "LogFile /run/lab/conntrackd-fw1.log\n",
		"IPv4_address 127.0.0.0/8\n", "IPv4_address 192.0.2.0/24\n", "TCP\n", "UDP\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Count(conf, "{") != strings.Count(conf, "}") {
		t.Errorf("unbalanced braces:\n%s", conf)
	}
}

func TestConntrackdConfigHostile(t *testing.T) {
	for name, mod := range map[string]func(*ConntrackdOptions){
		"node":         func(o *ConntrackdOptions) { o.Node = "fw1\n}" },
		"interface":    func(o *ConntrackdOptions) { o.Interface = "sync0 }" },
		"same address": func(o *ConntrackdOptions) { o.Peer = o.Local },
		"v6":           func(o *ConntrackdOptions) { o.Peer = netip.MustParseAddr("2001:db8::2") },
		"no address":   func(o *ConntrackdOptions) { o.Local = netip.Addr{} },
		"dir relative": func(o *ConntrackdOptions) { o.Dir = "run/lab" },
		"dir brace":    func(o *ConntrackdOptions) { o.Dir = "/run/lab}" },
		"dir newline":  func(o *ConntrackdOptions) { o.Dir = "/run/lab\nGeneral {" },
		"ignore v6":    func(o *ConntrackdOptions) { o.Ignore = append(o.Ignore, netip.MustParsePrefix("2001:db8::/64")) },
		"ignore zero":  func(o *ConntrackdOptions) { o.Ignore = append(o.Ignore, netip.Prefix{}) },
	} {
		o := goodConntrackd()
		mod(&o)
		if conf, err := ConntrackdConfig(o); err == nil {
			t.Errorf("%s: accepted:\n%s", name, conf)
		}
	}
	_, err := ConntrackdConfig(ConntrackdOptions{})
	for _, want := range []string{"node", "interface", "addresses", "dir"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// startSharedNAT builds a lab and starts the real-traffic variant with
// WAN-side VRRP addresses as every link's nat_to, strict conntrack, and
// (conntrackd) conntrackd syncing the pair.
func startSharedNAT(t *testing.T, conntrackd bool) *Cluster {
	t.Helper()
	requireLinux(t)
	if why := ConntrackdMissing(); conntrackd && why != "" {
		testkit.SkipOrRequire(t, why)
	}
	bin := gwtraffic(t)
	l := Start(t, Options{})
	opt := ClusterOptions{Profile: "fast", NoDamping: true, Bin: binaries(t), Dir: t.TempDir(), Log: testLog{t}}
	c, err := StartLinux(t.Context(), l, LinuxOptions{Cluster: opt, Traffic: bin, SharedNAT: true, Conntrackd: conntrackd})
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

// stateSyncRun is what one run of the master changes measured.
type stateSyncRun struct {
	handovers []handoverResult
	report    traffic.Report
}

type handoverResult struct {
	name       string
	start, end time.Time // the trigger; the end of the wait for every stream to resume
	moved      time.Duration
	resumed    []bool          // per stream: echoes again before the next master change
	stall      []time.Duration // per stream: longest silence overlapping [start, end]
}

// Streams and handovers of the state-sync scenario: 12 connections × 6
// master changes, 72 stalls per run.
const (
	syncStreams    = 12
	syncStreamRate = 100
	// resumeWait bounds the wait for every stream to echo again after a
	// master change: past it the stream counts as not resumed.
	resumeWait = 10 * time.Second
)

// masterChanges runs the scenario's master changes on c while a client
// keeps syncStreams long-lived TCP connections busy through the pair:
// fw1 impaired (its probes of isp1 dropped at isp1: gwstated writes its
// track file, keepalived moves the group to fw2) and healthy again (back
// to fw1), twice; then keepalived stopped on fw1 (SIGTERM: it gives the
// addresses up) and started again (fw1 preempts). After each change it
// waits until every stream has echoed 20 more records, at most
// resumeWait, and notes which did.
func masterChanges(t *testing.T, c *Cluster) stateSyncRun {
	ctx := t.Context()
	run, err := c.StartStreams(trafficBin.path, "streams", syncStreams, syncStreamRate)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(run.name, 10*time.Second) })
	waitTraffic(t, run, 30*time.Second, "every stream connected and echoing", func(st traffic.Status) bool {
		if len(st.Streams) != syncStreams {
			return false
		}
		for _, s := range st.Streams {
			if s.Received < 100 || s.Err != "" {
				return false
			}
		}
		return true
	})
	impair := func() error {
		if err := c.Lab.AddFault(ctx, "isp1", Fault{Loss: 100, Peers: c.Lab.FirewallPeers(FW1, "isp1")}); err != nil {
			return err
		}
		waitTrack(t, c, FW1, "50")
		return nil
	}
	heal := func() error {
		if err := c.Lab.Clear(ctx, "isp1"); err != nil {
			return err
		}
		waitTrack(t, c, FW1, "0")
		return nil
	}
	steps := []struct {
		name, to string
		do       func() error
	}{
		{"fw1 impaired", FW2, impair},
		{"fw1 healthy", FW1, heal},
		{"fw1 impaired again", FW2, impair},
		{"fw1 healthy again", FW1, heal},
		{"keepalived stopped on fw1", FW2, func() error { return c.Stop("keepalived-"+FW1, 10*time.Second) }},
		{"keepalived started on fw1", FW1, func() error { return c.StartKeepalivedSync(FW1, "0.1") }},
	}
	var out stateSyncRun
	for _, s := range steps {
		before, err := run.Status()
		if err != nil {
			t.Fatal(err)
		}
		h := handoverResult{name: s.name, start: time.Now()}
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSharedMaster(ctx, s.to, 20*time.Second); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		h.moved = time.Since(h.start)
		base, err := run.Status()
		if err != nil {
			t.Fatal(err)
		}
		werr := run.WaitStatus(ctx, resumeWait, "every stream echoing after "+s.name, func(st traffic.Status) bool {
			for i, p := range st.Streams {
				if p.Err != "" || p.Received < base.Streams[i].Received+20 {
					return false
				}
			}
			return true
		})
		h.end = time.Now()
		after, err := run.Status()
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range after.Streams {
			h.resumed = append(h.resumed, p.Err == "" && p.Received >= base.Streams[i].Received+20)
		}
		if werr != nil {
			t.Logf("%s: %v", s.name, werr)
		}
		t.Logf("%s: %s master after %v; streams echoing again: %d of %d (%d records before)",
			s.name, s.to, h.moved.Round(time.Millisecond), count(h.resumed), len(h.resumed), before.Streams[0].Received)
		out.handovers = append(out.handovers, h)
	}
	out.report = stopTraffic(t, run)
	for k := range out.handovers {
		h := &out.handovers[k]
		for _, r := range out.report.Streams {
			d, _ := r.StallAround(h.start, h.end)
			h.stall = append(h.stall, d)
		}
	}
	return out
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// summary logs the figures of a run: per-connection stall on a master
// change (p50, p99, max over every stream and change), and survivors.
func (r stateSyncRun) summary(t *testing.T, what string) (stalls []time.Duration, survived, total int) {
	t.Helper()
	for _, h := range r.handovers {
		stalls = append(stalls, h.stall...)
		survived += count(h.resumed)
		total += len(h.resumed)
		t.Logf("%s: %-26s moved %6v  stall p50 %6v max %6v  resumed %d/%d", what, h.name, h.moved.Round(time.Millisecond),
			percentile(h.stall, 50).Round(time.Millisecond), percentile(h.stall, 100).Round(time.Millisecond), count(h.resumed), len(h.resumed))
	}
	ms := make([]string, len(stalls))
	for i, d := range stalls {
		ms[i] = strconv.FormatInt(d.Milliseconds(), 10)
	}
	t.Logf("%s: stalls_ms %s", what, strings.Join(ms, " "))
	alive := 0
	for _, s := range r.report.Streams {
		if s.Alive() {
			alive++
		}
	}
	t.Logf("%s: FIGURE per-connection stall on a master change: p50 %v p99 %v max %v (%d connections × %d changes); resumed %d of %d; connections alive at the end %d of %d",
		what, percentile(stalls, 50).Round(time.Millisecond), percentile(stalls, 99).Round(time.Millisecond), percentile(stalls, 100).Round(time.Millisecond),
		len(r.report.Streams), len(r.handovers), survived, total, alive, len(r.report.Streams))
	return stalls, survived, total
}

// TestLinuxStateSync: with conntrackd syncing the pair and every link's
// nat_to on a WAN-side VRRP address, established TCP connections survive
// every master change (an impaired master demoted by gwstated, a healthy
// one preempting back, keepalived stopped and started): none is reset,
// none ends out of order, and each echoes again after every change. The
// stall per connection and change is logged (p50, p99), not asserted.
func TestLinuxStateSync(t *testing.T) {
	c := startSharedNAT(t, true)
	r := masterChanges(t, c)
	_, survived, total := r.summary(t, "conntrackd")
	if survived != total {
		for _, h := range r.handovers {
			for i, ok := range h.resumed {
				if !ok {
					t.Errorf("%s: stream %d did not echo again within %v: %+v", h.name, i, resumeWait, r.report.Streams[i])
				}
			}
		}
	}
	isps := map[string]int{}
	for _, s := range r.report.Streams {
		if !s.Alive() {
			t.Errorf("stream %d did not survive: err %q, out of order %d, gaps %+v", s.Stream, s.Err, s.OutOfOrder, s.Gaps)
		}
		isp, ok := c.Lab.ISP(s.ISP)
		if src, err := netip.ParseAddrPort(s.Source); !ok || err != nil || src.Addr() != WANAddress(isp) {
			t.Errorf("stream %d via %s: the server saw %q, want the WAN VRRP address of %s (nat_to)", s.Stream, s.ISP, s.Source, s.ISP)
		}
		isps[s.ISP]++
	}
	t.Logf("streams per ISP %v", isps)
	for _, fw := range []string{FW1, FW2} {
		if st, err := c.Conntrackd(t.Context(), fw, "-s"); err == nil {
			t.Logf("conntrackd %s -s:\n%s", fw, firstLines(st, 12))
		}
	}
}

// TestLinuxStateSyncWithoutConntrackd runs the same master changes with
// the same shared NAT addresses and strict conntrack but no conntrackd:
// the new master has no entry for the connections and drops their packets,
// so they stall until the old master is back (or die). It shows that
// TestLinuxStateSync can fail: here some stream must not echo again after
// some master change.
func TestLinuxStateSyncWithoutConntrackd(t *testing.T) {
	c := startSharedNAT(t, false)
	r := masterChanges(t, c)
	_, survived, total := r.summary(t, "without conntrackd")
	if survived == total {
		t.Errorf("every stream echoed again after every master change without conntrackd (%d of %d): the state-sync scenario cannot tell", survived, total)
	}
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
