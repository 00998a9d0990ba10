package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gwstated/lab/traffic"
)

// The traffic tool's ports on the internet host: UDP echo, plain TCP, and
// the TCP port of the lab config's sticky class (https, tcp 443).
const (
	TrafficUDPPort = 7000
	TrafficTCPPort = 8080
	StickyTCPPort  = 443
	// TrafficStreamPort is the echo port of the long-lived streams.
	TrafficStreamPort = 9000
)

// BuildTraffic compiles the traffic tool (lab/gwtraffic) into dir and
// returns its path; like Build, from inside the source tree.
func BuildTraffic(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "gwtraffic")
	if err := run(ctx, "go", "build", "-o", out, "gwstated/lab/gwtraffic"); err != nil {
		return "", fmt.Errorf("lab: build gwtraffic (run from the gwstated source tree): %w", err)
	}
	return out, nil
}

// NewHarness returns a Cluster that runs no agents: an owner for
// keepalived and traffic processes in a routed lab whose data plane is
// StaticNAT. Close stops what it started.
func NewHarness(l *Lab, dir string, log io.Writer) *Cluster {
	if log == nil {
		log = io.Discard
	}
	return &Cluster{Lab: l, opt: ClusterOptions{Dir: dir, Log: log}, procs: map[string]*Process{}, hash: map[string]string{}}
}

// StartServers runs the traffic server in every ISP's namespace, named
// after the ISP, and waits until each listens.
func (c *Cluster) StartServers(ctx context.Context, bin string) error {
	ports := strconv.Itoa(TrafficTCPPort) + "," + strconv.Itoa(StickyTCPPort)
	for _, s := range c.Lab.ISPs() {
		name := "traffic-" + s.Name
		log := filepath.Join(c.opt.Dir, name+".log")
		args := []string{"server", "--isp", s.Name, "--listen", Internet4.String(), "--udp", strconv.Itoa(TrafficUDPPort), "--tcp", ports,
			"--stream", strconv.Itoa(TrafficStreamPort)}
		if err := c.startProc(name, s.Name, log, bin, args); err != nil {
			return err
		}
		err := Wait(ctx, 10*time.Second, name+" listening", func() (bool, error) {
			b, err := os.ReadFile(log)
			if !c.Proc(name).Running() {
				return false, fmt.Errorf("exited: %s", b)
			}
			return strings.Contains(string(b), "msg=serving"), err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// TrafficOptions choose a client run (zero values: 20 flows at 100/s,
// 20 connections/s to TrafficTCPPort).
type TrafficOptions struct {
	Name     string // process name; default traffic-client
	Flows    int
	Rate     int
	ConnRate int   // per port
	Ports    []int // TCP ports; default TrafficTCPPort
}

// TrafficRun is a traffic client running on the LAN host.
type TrafficRun struct {
	c                  *Cluster
	name               string
	report, statusPath string
}

// StartClient runs the traffic client on the LAN host towards the
// internet host (through the firewalls' VRRP address).
func (c *Cluster) StartClient(bin string, o TrafficOptions) (*TrafficRun, error) {
	if o.Name == "" {
		o.Name = "traffic-client"
	}
	if o.Flows == 0 {
		o.Flows = 20
	}
	if o.Rate == 0 {
		o.Rate = 100
	}
	if o.ConnRate == 0 {
		o.ConnRate = 20
	}
	if len(o.Ports) == 0 {
		o.Ports = []int{TrafficTCPPort}
	}
	var ports []string
	for _, p := range o.Ports {
		ports = append(ports, strconv.Itoa(p))
	}
	r := &TrafficRun{c: c, name: o.Name,
		report:     filepath.Join(c.opt.Dir, o.Name+".json"),
		statusPath: filepath.Join(c.opt.Dir, o.Name+".status.json")}
	os.Remove(r.report)
	os.Remove(r.statusPath)
	args := []string{"client", "--server", Internet4.String(), "--udp", strconv.Itoa(TrafficUDPPort),
		"--flows", strconv.Itoa(o.Flows), "--rate", strconv.Itoa(o.Rate),
		"--tcp", strings.Join(ports, ","), "--conn-rate", strconv.Itoa(o.ConnRate),
		"--report", r.report, "--status", r.statusPath}
	if err := c.startProc(o.Name, "lan", filepath.Join(c.opt.Dir, o.Name+".log"), bin, args); err != nil {
		return nil, err
	}
	return r, nil
}

// Status reads the client's newest progress.
func (r *TrafficRun) Status() (traffic.Status, error) {
	var st traffic.Status
	b, err := os.ReadFile(r.statusPath)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// WaitStatus waits until cond accepts the client's progress.
func (r *TrafficRun) WaitStatus(ctx context.Context, timeout time.Duration, what string, cond func(traffic.Status) bool) error {
	return Wait(ctx, timeout, what, func() (bool, error) {
		if !r.c.Proc(r.name).Running() {
			return false, errors.New("the traffic client exited (see " + r.name + ".log)")
		}
		st, err := r.Status()
		if err != nil {
			return false, err
		}
		return cond(st), nil
	})
}

// Stop ends the client (SIGTERM: it stops sending, waits for the last
// echoes) and returns its report.
func (r *TrafficRun) Stop() (traffic.Report, error) {
	var rep traffic.Report
	if err := r.c.Stop(r.name, 20*time.Second); err != nil {
		return rep, err
	}
	b, err := os.ReadFile(r.report)
	if err != nil {
		return rep, fmt.Errorf("lab: traffic report: %w", err)
	}
	return rep, json.Unmarshal(b, &rep)
}

// FlowsReceivedSince returns a condition: every flow has received at
// least n more datagrams than in base, through isp when isp is not "".
func FlowsReceivedSince(base traffic.Status, n int, isp string) func(traffic.Status) bool {
	return func(st traffic.Status) bool {
		if len(st.Flows) == 0 || len(st.Flows) < len(base.Flows) {
			return false
		}
		for i, f := range st.Flows {
			had := 0
			if i < len(base.Flows) {
				had = base.Flows[i].Received
			}
			if f.Received < had+n || isp != "" && f.ISP != isp {
				return false
			}
		}
		return true
	}
}

// FirewallOf names the firewall whose uplink address is the source
// (ip:port) the server saw: which firewall NAT'd a flow. "" when none.
func (l *Lab) FirewallOf(source string) string {
	ap, err := netip.ParseAddrPort(source)
	if err != nil {
		return ""
	}
	for _, fw := range l.fws {
		for _, s := range l.isps {
			if u := l.Uplink(fw, s.Name); u.Addr4 == ap.Addr() || u.Addr6 == ap.Addr() {
				return fw
			}
		}
	}
	return ""
}

// CutProbes drops the ICMPv4 arriving at an ISP's namespace (its gateway
// and internet host): the firewalls' probes fail while the client's UDP
// and TCP traffic still passes. Restore removes it.
func (l *Lab) CutProbes(ctx context.Context, isp string) error {
	args := []string{"add", "table", "inet", nftTable, ";",
		"add", "chain", "inet", nftTable, "in", "{", "type", "filter", "hook", "input", "priority", "0", ";", "policy", "accept", ";", "}", ";",
		"add", "rule", "inet", nftTable, "in", "meta", "l4proto", "icmp", "drop"}
	return l.nft(ctx, isp, args...)
}
