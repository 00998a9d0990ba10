package lab

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseGatewayEvents(t *testing.T) {
	gw := netip.MustParseAddr("198.51.100.1")
	in := `[2026-11-29T19:05:55.713605] 198.51.100.100 dev lan0 lladdr 9e:02:e9:4b:ea:f6 STALE 
[2026-11-29T19:05:55.715997] 198.51.100.1 dev br0 lladdr 3e:74:98:0b:08:f5 REACHABLE 
[2026-11-29T19:05:57.821975] default via 198.18.2.1 dev wan1 
[2026-11-29T19:05:57.825342] Deleted 201:	from all fwmark 0x100 lookup 200
[2026-11-29T19:05:58.000001] 198.51.100.1 dev br0 lladdr 3e:74:98:0b:08:f5 STALE 
[2026-11-29T19:05:58.100000] 5: lan0    inet 198.51.100.1/24 scope global secondary lan0
       valid_lft forever preferred_lft forever
[2026-11-29T19:05:58.100500] 5: lan0    inet 198.51.100.12/24 scope global lan0
       valid_lft forever preferred_lft forever
[2026-11-29T19:05:58.120000] 198.51.100.1 dev br0 lladdr 2e:64:7e:98:39:25 REACHABLE 
[2026-11-29T19:05:58.130000] Deleted 198.51.100.1 dev br0 lladdr 2e:64:7e:98:39:25 STALE 
[2026-11-29T19:05:58.200000] Deleted 5: lan0    inet 198.51.100.1/24 scope global secondary lan0
       valid_lft forever preferred_lft forever
[2026-11-29T19:05:58.300000] 198.51.100.1 dev br0 lladdr 3e:74:98:0b:08:f5 REACHABLE 
[2026-11-29T19:05:58.400000] 198.51.100.10 dev br0 lladdr 00:00:00:00:00:01 REACHABLE 
`
	ev, err := ParseGatewayEvents(strings.NewReader(in), "fw2", gw, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"19:05:58.100000 fw2 took 198.51.100.1",
		"19:05:58.120000 fw2 gateway MAC 3e:74:98:0b:08:f5 → 2e:64:7e:98:39:25",
		"19:05:58.200000 fw2 gave up 198.51.100.1",
		"19:05:58.300000 fw2 gateway MAC 2e:64:7e:98:39:25 → 3e:74:98:0b:08:f5",
	}
	var got []string
	for _, e := range ev {
		got = append(got, e.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseGatewayEventsBadInput(t *testing.T) {
	gw := netip.MustParseAddr("198.51.100.1")
	for _, in := range []string{
		"[2026-11-29T19:05:58] 5: lan0 inet 198.51.100.1/24\n[not a time] x\n",
		"[2026-11-29T19:05:58.1 no bracket\n",
		"[; reboot] 198.51.100.1 dev br0 lladdr x\n",
	} {
		if _, err := ParseGatewayEvents(strings.NewReader(in), "lan", gw, time.UTC); !errors.Is(err, ErrMonitorLine) {
			t.Errorf("%q: err %v, want ErrMonitorLine", in, err)
		}
	}
	// Lines that only look like the gateway are not events.
	ev, err := ParseGatewayEvents(strings.NewReader("[2026-11-29T19:05:58.1] 198.51.100.1\n[2026-11-29T19:05:58.2] 5: lan0 inet 198.51.100.10/24\n[2026-11-29T19:05:58.3] 198.51.100.1 dev br0 FAILED\n"), "lan", gw, time.UTC)
	if err != nil || len(ev) != 0 {
		t.Fatalf("events %v, err %v; want none", ev, err)
	}
}
