package probe_test

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"gwstated/lab"
	"gwstated/probe"
)

// The ICMP transport's sockets: on Linux one per IP version, shared by
// every source, each request sent from its own source address (the
// gateway answers to that address, so a reply reaches the endpoint of
// that source and no other), a batch of requests from several sources in
// one SendBatch; a socket lives as long as one of its endpoints; a source
// address the host does not have is refused at Open.
func TestICMPSharedSocket(t *testing.T) {
	l := lab.Start(t, lab.Options{ISPs: 1, Firewalls: 1, NoWitness: true, NoLAN: true})
	ctx := context.Background()
	u := l.Uplink("fw1", "isp1")
	s, _ := l.ISP("isp1")
	second := netip.MustParseAddr("198.18.1.200")
	if err := l.IP(ctx, "fw1", "addr", "add", second.String()+"/24", "dev", u.Interface); err != nil {
		t.Fatal(err)
	}
	tr := &probe.ICMP{Netns: l.NetnsPath("fw1"), Log: testLog(t)}
	// poll reads the replies where the transport is a Poller (Linux);
	// elsewhere its receive goroutines deliver them.
	poll := func(now time.Time) {
		if p, ok := any(tr).(probe.Poller); ok {
			p.Poll(now)
		}
	}
	type got struct {
		ep int
		r  probe.Reply
	}
	replies := make(chan got, 64)
	open := func(i int, src probe.Source) probe.Endpoint {
		t.Helper()
		ep, err := tr.Open(src, func(r probe.Reply) { replies <- got{i, r} })
		if err != nil {
			t.Fatalf("Open(%+v): %v", src, err)
		}
		return ep
	}
	ep1 := open(1, probe.Source{Link: "a", Addr: u.Addr4})
	ep2 := open(2, probe.Source{Link: "b", Addr: second})
	ep3 := open(3, probe.Source{Link: "c", Interface: u.Interface, V6: true})
	want := 3 // bound sockets elsewhere
	if runtime.GOOS == "linux" {
		want = 2
	}
	if n := tr.Sockets(); n != want {
		t.Errorf("Sockets() = %d with two IPv4 sources and an IPv6 one, want %d", n, want)
	}
	// expect waits for the replies to ids (endpoint by id: id/100),
	// polling the transport as the prober's scheduler does (on Linux
	// nothing else reads), and fails on a reply delivered to another
	// endpoint or with a receive time outside [sent, the Poll that read
	// it].
	expect := func(what string, sent time.Time, ids ...uint16) {
		t.Helper()
		left := map[uint16]bool{}
		for _, id := range ids {
			left[id] = true
		}
		deadline := time.After(10 * time.Second)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var polled time.Time
		for len(left) > 0 {
			select {
			case g := <-replies:
				if int(g.r.ID/100) != g.ep {
					t.Fatalf("%s: reply %+v delivered to endpoint %d", what, g.r, g.ep)
				}
				if g.r.At.Before(sent) || (!polled.IsZero() && g.r.At.After(polled)) {
					t.Errorf("%s: reply %d received at %v: not between its send (%v) and the Poll that read it (%v)",
						what, g.r.ID, g.r.At, sent, polled)
				}
				delete(left, g.r.ID)
			case <-tick.C:
				polled = time.Now()
				poll(polled)
			case <-deadline:
				t.Fatalf("%s: no reply for ids %v", what, left)
			}
		}
	}
	batch := []probe.Request{
		{EP: ep1, Dst: s.Gateway4, ID: 101, Seq: 1},
		{EP: ep2, Dst: s.Gateway4, ID: 201, Seq: 1},
		{EP: ep3, Dst: s.Gateway6, ID: 301, Seq: 1},
		{EP: ep2, Dst: s.Gateway4, ID: 202, Seq: 2},
	}
	sent := time.Now()
	tr.SendBatch(batch)
	for _, r := range batch {
		if r.Err != nil {
			t.Fatalf("SendBatch: %+v", r)
		}
	}
	expect("one batch from three sources", sent, 101, 201, 202, 301)

	if err := ep1.Close(); err != nil {
		t.Fatal(err)
	}
	sent = time.Now()
	if err := ep2.Send(s.Gateway4, 203, 3); err != nil {
		t.Fatal(err)
	}
	expect("the second source after the first closed", sent, 203)
	if n := tr.Sockets(); n != 2 { // the shared one stays (Linux), the bound one goes
		t.Errorf("Sockets() = %d after one of two IPv4 sources closed, want 2", n)
	}
	for _, ep := range []probe.Endpoint{ep2, ep3} {
		if err := ep.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := tr.Sockets(); n != 0 {
		t.Errorf("Sockets() = %d after every endpoint closed, want 0", n)
	}
	if err := ep3.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	poll(time.Now()) // nothing open: nothing to read
	select {
	case g := <-replies:
		t.Errorf("unexpected reply %+v", g)
	default:
	}

	// An address fw1 does not have: refused at Open, as a bind would be,
	// and not as a privilege problem.
	_, err := tr.Open(probe.Source{Link: "gone", Addr: netip.MustParseAddr("198.18.1.250")}, func(probe.Reply) {})
	if err == nil || errors.Is(err, probe.ErrNoPrivilege) {
		t.Errorf("Open from an address fw1 does not have: %v, want a bind error", err)
	}
	if n := tr.Sockets(); n != 0 {
		t.Errorf("Sockets() = %d after a refused Open, want 0", n)
	}
}
