package traffic

import (
	"errors"
	"strings"
	"testing"
)

func TestWireRoundTrip(t *testing.T) {
	e := Echo{Probe: Probe{Flow: 3, Seq: 1 << 40, Sent: -5}, ISP: "isp2", Source: "198.18.2.12:40000"}
	got, err := ParseEcho(AppendEcho(nil, e))
	if err != nil || got != e {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	p, err := ParseProbe(AppendProbe(nil, e.Probe))
	if err != nil || p != e.Probe {
		t.Fatalf("probe round trip: %+v, %v", p, err)
	}
	long := Echo{ISP: strings.Repeat("a", 100), Source: "x"}
	got, err = ParseEcho(AppendEcho(nil, long))
	if err != nil || len(got.ISP) != maxName {
		t.Fatalf("long identity: %q, %v: want cut to %d", got.ISP, err, maxName)
	}
}

func TestWireMalformed(t *testing.T) {
	good := AppendEcho(nil, Echo{ISP: "isp1", Source: "1.2.3.4:5"})
	bad := map[string][]byte{
		"empty":       nil,
		"short":       good[:headerLen-1],
		"bad magic":   append([]byte("XXXX"), good[4:]...),
		"no identity": good[:headerLen],
		"truncated":   good[:len(good)-1],
		"newline":     AppendEcho(nil, Echo{ISP: "isp1\nfake", Source: "1.2.3.4:5"}),
		"control":     AppendEcho(nil, Echo{ISP: "isp1", Source: "\x1b[2J"}),
		"length 255":  append(append([]byte{}, good[:headerLen]...), 255, 'a'),
	}
	for name, b := range bad {
		if _, err := ParseEcho(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	if _, err := ParseProbe([]byte("GWT1")); !errors.Is(err, ErrMalformed) {
		t.Errorf("short probe: %v", err)
	}
}

func TestGreeting(t *testing.T) {
	isp, src, err := ParseGreeting(Greeting("isp1", "198.18.1.11:5000"))
	if err != nil || isp != "isp1" || src != "198.18.1.11:5000" {
		t.Fatalf("%q %q %v", isp, src, err)
	}
	for _, line := range []string{"", "\n", "isp1\n", " x\n", "isp1 \n", "isp1 a\x00b\n", "isp1 " + strings.Repeat("1", 65) + "\n"} {
		if _, _, err := ParseGreeting(line); !errors.Is(err, ErrMalformed) {
			t.Errorf("greeting %q: %v, want ErrMalformed", line, err)
		}
	}
}
