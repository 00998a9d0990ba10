package probe

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// What the receive path accepts: our echo replies, with or without the
// IPv4 header; nothing else.
func TestParseReply(t *testing.T) {
	tr := &ICMP{token: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	e4 := &icmpEndpoint{t: tr}
	e6 := &icmpEndpoint{t: tr, v6: true}
	from := netip.MustParseAddr("198.18.1.1")
	at := time.Unix(1, 0)
	reply := func(typ byte, id uint16, seq uint64, token [8]byte) []byte {
		b := make([]byte, echoLen)
		b[0] = typ
		binary.BigEndian.PutUint16(b[4:], id)
		binary.BigEndian.PutUint16(b[6:], uint16(seq))
		copy(b[8:], token[:])
		binary.BigEndian.PutUint64(b[16:], seq)
		return b
	}
	withHeader := func(b []byte) []byte { h := make([]byte, 20); h[0] = 0x45; return append(h, b...) }
	good := reply(0, 7, 1<<20+5, tr.token)
	r, ok := e4.parse(good, from, at)
	if !ok || r.ID != 7 || r.Seq != 1<<20+5 || r.From != netip.MustParseAddr("198.18.1.1") || !r.At.Equal(at) {
		t.Fatalf("echo reply: %+v %v", r, ok)
	}
	if r, ok := e4.parse(withHeader(good), from, at); !ok || r.Seq != 1<<20+5 {
		t.Fatalf("with the IPv4 header: %+v %v", r, ok)
	}
	if r, ok := e6.parse(reply(129, 7, 9, tr.token), netip.MustParseAddr("fe80::1%wan0"), at); !ok || r.From.Zone() != "wan0" {
		t.Fatalf("ICMPv6 echo reply: %+v %v", r, ok)
	}
	seqMismatch := reply(0, 7, 5, tr.token)
	binary.BigEndian.PutUint16(seqMismatch[6:], 6)
	for name, b := range map[string][]byte{
		"empty":             {},
		"short":             good[:echoLen-1],
		"request":           reply(8, 7, 5, tr.token),
		"other pinger":      reply(0, 7, 5, [8]byte{9}),
		"sequence mismatch": seqMismatch,
		"bad header length": append([]byte{0x4f}, make([]byte, 30)...),
		"header only":       withHeader(nil),
		"v6 type on v4":     reply(129, 7, 5, tr.token),
	} {
		if r, ok := e4.parse(b, from, at); ok {
			t.Errorf("%s: accepted %+v", name, r)
		}
	}
	if r, ok := e6.parse(good, from, at); ok {
		t.Errorf("ICMPv4 echo reply on an IPv6 socket: accepted %+v", r)
	}
	if _, ok := e4.parse(good, netip.Addr{}, at); ok {
		t.Error("no source address accepted")
	}
}

func TestChecksum(t *testing.T) {
	// RFC 1071's example: 0001 f203 f4f5 f6f7 → sum ddf2, checksum 220d.
	if c := checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}); c != 0x220d {
		t.Errorf("checksum %#x, want 0x220d", c)
	}
	if c := checksum([]byte{0xff}); c != 0x00ff {
		t.Errorf("odd length: %#x", c)
	}
}
