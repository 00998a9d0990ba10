package lab

import (
	"bytes"
	"strings"
	"testing"
)

// TestDemoTraffic runs `make demo-traffic`'s logic end to end: it must
// succeed (DemoTraffic checks the traffic itself) and show each step.
func TestDemoTraffic(t *testing.T) {
	requireLinux(t)
	var out bytes.Buffer
	err := DemoTraffic(t.Context(), &out, DemoTrafficOptions{Bin: binaries(t), Traffic: gwtraffic(t), Dir: t.TempDir()})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"table inet gwstated", "Cutting isp1", "flows per ISP isp1 0, isp2 20", "isp1 up→down",
		"flows on isp2 at the cut:", "0 datagrams lost", "new TCP connections:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
