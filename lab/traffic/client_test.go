package traffic

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs a Server named isp on loopback and returns its ports.
func serve(t *testing.T, isp string) (udp, tcp int) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{ISP: isp}).Serve(ctx, pc, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return pc.LocalAddr().(*net.UDPAddr).Port, ln.Addr().(*net.TCPAddr).Port
}

// TestClientLoopback runs a client against a server on loopback: every
// flow is carried by the server's identity without loss, and connections
// succeed. The run ends when the client has sent 50 datagrams per flow
// and made 5 connections (a condition, not a sleep).
func TestClientLoopback(t *testing.T) {
	udp, tcp := serve(t, "isp7")
	c, err := NewClient(Config{
		Server: netip.MustParseAddr("127.0.0.1"), UDPPort: udp, Flows: 4, Rate: 200,
		TCPPorts: []int{tcp}, ConnRate: 50, Drain: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	type result struct {
		r   Report
		err error
	}
	res := make(chan result, 1)
	go func() {
		r, err := c.Run(ctx)
		res <- result{r, err}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for enough := false; !enough; {
		select {
		case <-ctx.Done():
			t.Fatalf("client made no progress: %+v", c.Status())
		case <-tick.C:
		}
		st := c.Status()
		enough = len(st.Flows) == 4 && st.Conns["isp7"] >= 5
		for _, f := range st.Flows {
			enough = enough && f.Received >= 50 && f.ISP == "isp7"
		}
	}
	cancel()
	out := <-res
	if out.err != nil {
		t.Fatal(out.err)
	}
	r := out.r
	if len(r.Flows) != 4 {
		t.Fatalf("%d flows", len(r.Flows))
	}
	for _, f := range r.Flows {
		if f.Lost != 0 || !f.OnlyOn("isp7") || f.LocalPort == 0 || f.Sent < 50 {
			t.Errorf("flow %d: sent %d lost %d ISPs %v port %d", f.Flow, f.Sent, f.Lost, f.ISPs(), f.LocalPort)
		}
		if s := f.Segments[0].Source; !strings.HasPrefix(s, "127.0.0.1:") {
			t.Errorf("flow %d: server saw source %q", f.Flow, s)
		}
	}
	if n := CountByISP(r.Conns)["isp7"]; n < 5 {
		t.Errorf("%d connections via isp7", n)
	}
	for _, o := range ConnOutages(r.Conns) {
		t.Errorf("connection outage on loopback: %+v", o)
	}
}

func TestClientConfigErrors(t *testing.T) {
	_, err := NewClient(Config{Flows: -1, Rate: -3, TCPPorts: []int{0, 70000}, ConnRate: 5000})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("%v: want ErrConfig", err)
	}
	for _, want := range []string{"server", "flows", "rate", "tcp port: 0", "tcp port: 70000", "conn rate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestServerIdentity(t *testing.T) {
	for _, bad := range []string{"", "isp1; reboot", "isp1\n", strings.Repeat("a", 65), "ISP1"} {
		err := (&Server{ISP: bad}).Serve(context.Background(), nil)
		if !errors.Is(err, ErrBadIdentity) {
			t.Errorf("identity %q: %v", bad, err)
		}
	}
}

// TestServerIgnoresJunk sends the server datagrams that are not the
// tool's: it answers none and still answers a real one.
func TestServerIgnoresJunk(t *testing.T) {
	udp, _ := serve(t, "isp1")
	conn, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(udp)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, junk := range [][]byte{{}, []byte("GWT1"), []byte("hello world, this is not a probe")} {
		if _, err := conn.Write(junk); err != nil {
			t.Fatal(err)
		}
	}
	p := Probe{Flow: 1, Seq: 9, Sent: 42}
	if _, err := conn.Write(AppendProbe(nil, p)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEcho(buf[:n])
	if err != nil || e.Probe != p || e.ISP != "isp1" {
		t.Fatalf("first reply %+v %v: want the echo of the real probe", e, err)
	}
}
