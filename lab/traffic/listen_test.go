package traffic

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"gwstated/internal/testkit"
)

// burst sends n probes to pc with nobody reading (a server goroutine that
// has no CPU), then reads what the kernel kept.
func burst(t *testing.T, pc net.PacketConn, n int) int {
	t.Helper()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b []byte
	for i := range n {
		b = AppendProbe(b[:0], Probe{Flow: 1, Seq: uint64(i), Sent: time.Now().UnixNano()})
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 2048)
	got := 0
	for {
		pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := pc.ReadFrom(buf); err != nil {
			return got
		}
		got++
	}
}

// TestServerSocketHoldsAStall: 3 s of a run's datagrams (20 flows × 100/s)
// arriving while the server does not read are all kept. With the default
// receive buffer (net.ListenPacket, as before) about 200 are: the lab
// counted the rest as lost on the surviving link.
func TestServerSocketHoldsAStall(t *testing.T) {
	if os.Geteuid() != 0 {
		testkit.SkipOrRequire(t, "SO_RCVBUFFORCE needs root (CAP_NET_ADMIN)")
	}
	const n = 6000
	pc, err := ListenUDP(context.Background(), "127.0.0.1:0", ServerReadBuffer)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if got := burst(t, pc, n); got != n {
		t.Fatalf("the server's socket kept %d of %d datagrams sent while it did not read", got, n)
	}
	def, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	t.Logf("with the default receive buffer: %d of %d kept", burst(t, def, n), n)
}
