package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// StartMonitor runs `ip -ts monitor address neigh route rule` in role's
// namespace (fw1, fw2, lan): every kernel change of addresses (the VRRP
// address coming and going), neighbour entries (the LAN host's entry for
// its gateway changing MAC), routes and policy rules, stamped by ip with
// microsecond wall-clock times, into MonitorPath(role). It is
// event-driven: no polling, so a VRRP flip however short is recorded.
func (c *Cluster) StartMonitor(role string) error {
	return c.startProc("monitor-"+role, role, c.MonitorPath(role), "ip",
		[]string{"-ts", "monitor", "address", "neigh", "route", "rule"})
}

// MonitorPath is the file StartMonitor writes for role.
func (c *Cluster) MonitorPath(role string) string {
	return filepath.Join(c.opt.Dir, "monitor-"+role+".log")
}

// GatewayEvent is one change of who is the LAN's gateway, as the kernel
// saw it: a firewall adding or deleting the VRRP address, or the LAN
// host's neighbour entry for the gateway changing its MAC.
type GatewayEvent struct {
	At   time.Time
	Role string // fw1, fw2, lan
	What string // "took 198.51.100.1", "gave up 198.51.100.1", "gateway MAC a → b"
}

func (e GatewayEvent) String() string {
	return e.At.UTC().Format("15:04:05.000000") + " " + e.Role + " " + e.What
}

// GatewayEvents reads the monitor records of the firewalls and of the LAN
// host (StartMonitor) and returns their gateway events, in time order.
func (c *Cluster) GatewayEvents() ([]GatewayEvent, error) {
	var all []GatewayEvent
	for _, role := range append(c.Lab.Firewalls(), "lan") {
		f, err := os.Open(c.MonitorPath(role))
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		ev, err := ParseGatewayEvents(f, role, LANGateway, time.Local)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("lab: %s: %w", c.MonitorPath(role), err)
		}
		all = append(all, ev...)
	}
	slices.SortStableFunc(all, func(a, b GatewayEvent) int { return a.At.Compare(b.At) })
	return all, nil
}

// ErrMonitorLine is returned for a timestamped line ParseGatewayEvents
// cannot read.
var ErrMonitorLine = errors.New("unreadable ip monitor line")

// ParseGatewayEvents reads `ip -ts monitor` output (times in loc) and
// returns the events about gw: an address line for gw (added, or
// "Deleted"), and a neighbour line for gw whose lladdr differs from the
// previous one seen (the first sighting is not a change). Continuation
// lines (no timestamp) and other objects are skipped.
func ParseGatewayEvents(r io.Reader, role string, gw netip.Addr, loc *time.Location) ([]GatewayEvent, error) {
	var out []GatewayEvent
	var mac string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if !strings.HasPrefix(line, "[") {
			continue
		}
		end := strings.IndexByte(line, ']')
		if end < 0 {
			return out, fmt.Errorf("%w %d: %q", ErrMonitorLine, n, line)
		}
		at, err := time.ParseInLocation("2006-01-02T15:04:05.999999", line[1:end], loc)
		if err != nil {
			return out, fmt.Errorf("%w %d: %q: %w", ErrMonitorLine, n, line, err)
		}
		f := strings.Fields(line[end+1:])
		deleted := len(f) > 0 && f[0] == "Deleted"
		if deleted {
			f = f[1:]
		}
		if len(f) == 0 {
			continue
		}
		// address: "3: lan0 inet 198.51.100.1/24 scope global lan0"
		if i := slices.Index(f, "inet"); i >= 0 && i+1 < len(f) && strings.HasSuffix(f[0], ":") {
			if a, _, ok := strings.Cut(f[i+1], "/"); ok && a == gw.String() {
				what := "took " + a
				if deleted {
					what = "gave up " + a
				}
				out = append(out, GatewayEvent{At: at, Role: role, What: what})
			}
			continue
		}
		// neighbour: "198.51.100.1 dev br0 lladdr 3e:74:98:0b:08:f5 REACHABLE"
		if f[0] != gw.String() || deleted {
			continue
		}
		if i := slices.Index(f, "lladdr"); i >= 0 && i+1 < len(f) {
			if mac != "" && f[i+1] != mac {
				out = append(out, GatewayEvent{At: at, Role: role, What: "gateway MAC " + mac + " → " + f[i+1]})
			}
			mac = f[i+1]
		}
	}
	if err := sc.Err(); err != nil {
		return out, err
	}
	return out, nil
}
