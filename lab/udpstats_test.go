package lab

import (
	"errors"
	"strings"
	"testing"
)

func TestParseUDPStats(t *testing.T) {
	in := `Ip: Forwarding DefaultTTL
Ip: 1 64
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 35205 152 7 35424 7 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
`
	st, err := ParseUDPStats(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if st["InDatagrams"] != 35205 || st["RcvbufErrors"] != 7 || st["InErrors"] != 7 || len(st) != 9 {
		t.Fatalf("got %v", st)
	}
	for _, bad := range []string{
		"",
		"Udp: InDatagrams RcvbufErrors\nUdp: 1\n",
		"Udp: InDatagrams RcvbufErrors\nUdp: 1 x; reboot\n",
		"Udp: InDatagrams\n",
	} {
		if _, err := ParseUDPStats(strings.NewReader(bad)); !errors.Is(err, ErrSNMP) {
			t.Errorf("%q: err %v, want ErrSNMP", bad, err)
		}
	}
}
