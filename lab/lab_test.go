package lab

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.Cleanup(removeBinaries)) }

// ping sends count echoes from role's namespace and returns the loss percent.
func ping(t *testing.T, l *Lab, role string, src, dst netip.Addr, count int) int {
	t.Helper()
	args := []string{"-n", "-q", "-c", strconv.Itoa(count), "-i", "0.002", "-W", "1"}
	if src.IsValid() {
		args = append(args, "-I", src.String())
	}
	out, _ := l.Command(context.Background(), role, "ping", append(args, dst.String())...).CombinedOutput()
	m := regexp.MustCompile(`([0-9.]+)% packet loss`).FindSubmatch(out)
	if m == nil {
		// "connect: Network is unreachable" and the like: nothing got through.
		return 100
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return int(f)
}

func requirePing(t *testing.T) {
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("needs ping (iputils-ping)")
	}
}

func TestTopology(t *testing.T) {
	requirePing(t)
	l := Start(t, Options{})
	for _, fw := range l.Firewalls() {
		for _, s := range l.ISPs() {
			u := l.Uplink(fw, s.Name)
			for _, c := range []struct{ src, dst netip.Addr }{
				{u.Addr4, s.Gateway4}, {u.Addr6, s.Gateway6}, {u.Addr4, Internet4}, {u.Addr6, Internet6},
			} {
				if loss := ping(t, l, fw, c.src, c.dst, 3); loss != 0 {
					t.Errorf("%s: ping %v from %v: %d%% loss", fw, c.dst, c.src, loss)
				}
			}
		}
		if loss := ping(t, l, fw, netip.Addr{}, l.SyncAddr("witness"), 3); loss != 0 {
			t.Errorf("%s: ping witness: %d%% loss", fw, loss)
		}
		if loss := ping(t, l, fw, netip.Addr{}, l.LANAddr("lan"), 3); loss != 0 {
			t.Errorf("%s: ping lan host: %d%% loss", fw, loss)
		}
	}
	if loss := ping(t, l, "fw1", netip.Addr{}, l.SyncAddr("fw2"), 3); loss != 0 {
		t.Errorf("fw1 → fw2 over sync: %d%% loss", loss)
	}
}

// The routing that makes source binding matter: an unbound probe of the
// internet host leaves by the last ISP; a bound one by its own ISP.
func TestRoutingBySource(t *testing.T) {
	requirePing(t)
	l := Start(t, Options{NoWitness: true, NoLAN: true})
	ctx := context.Background()
	u1 := l.Uplink("fw1", "isp1")
	if err := l.Cut(ctx, "isp2"); err != nil {
		t.Fatal(err)
	}
	if loss := ping(t, l, "fw1", u1.Addr4, Internet4, 3); loss != 0 {
		t.Errorf("isp2 cut: ping from isp1's address: %d%% loss, want 0", loss)
	}
	if loss := ping(t, l, "fw1", u1.Addr6, Internet6, 3); loss != 0 {
		t.Errorf("isp2 cut: ping6 from isp1's address: %d%% loss, want 0", loss)
	}
	if loss := ping(t, l, "fw1", netip.Addr{}, Internet4, 3); loss != 100 {
		t.Errorf("isp2 cut: unbound ping: %d%% loss, want 100 (it should leave by isp2)", loss)
	}
	if err := l.Restore(ctx, "isp2"); err != nil {
		t.Fatal(err)
	}
	if err := l.Cut(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	if loss := ping(t, l, "fw1", u1.Addr4, Internet4, 3); loss != 100 {
		t.Errorf("isp1 cut: ping from isp1's address: %d%% loss, want 100", loss)
	}
	if loss := ping(t, l, "fw1", netip.Addr{}, Internet4, 3); loss != 0 {
		t.Errorf("isp1 cut: unbound ping: %d%% loss, want 0", loss)
	}
}

func TestFaults(t *testing.T) {
	requirePing(t)
	l := Start(t, Options{NoWitness: true, NoLAN: true})
	ctx := context.Background()
	s, _ := l.ISP("isp1")
	u1, u2 := l.Uplink("fw1", "isp1"), l.Uplink("fw2", "isp1")

	// One firewall only.
	if err := l.AddFault(ctx, "isp1", Fault{Loss: 100, Direction: Ingress, Peers: l.FirewallPeers("fw1", "isp1")}); err != nil {
		t.Fatal(err)
	}
	if loss := ping(t, l, "fw1", u1.Addr4, s.Gateway4, 3); loss != 100 {
		t.Errorf("fw1-only fault: fw1 loss %d%%, want 100", loss)
	}
	if loss := ping(t, l, "fw2", u2.Addr4, s.Gateway4, 3); loss != 0 {
		t.Errorf("fw1-only fault: fw2 loss %d%%, want 0", loss)
	}
	if err := l.Clear(ctx, "isp1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Clear(ctx, "isp1"); err != nil {
		t.Fatalf("second Clear: %v", err)
	}
	if loss := ping(t, l, "fw1", u1.Addr4, s.Gateway4, 3); loss != 0 {
		t.Errorf("after Clear: fw1 loss %d%%, want 0", loss)
	}

	// Asymmetric: replies dropped on a firewall's wan0 only.
	if err := l.AddFault(ctx, "fw1", Fault{Loss: 100, Direction: Ingress, Interface: "wan0"}); err != nil {
		t.Fatal(err)
	}
	if loss := ping(t, l, "fw1", u1.Addr4, s.Gateway4, 3); loss != 100 {
		t.Errorf("fw1 wan0 ingress drop: loss %d%%, want 100", loss)
	}
	u12 := l.Uplink("fw1", "isp2")
	if loss := ping(t, l, "fw1", u12.Addr4, Internet4, 3); loss != 0 {
		t.Errorf("fw1 wan0 ingress drop: isp2 loss %d%%, want 0", loss)
	}
	if err := l.ClearAll(ctx); err != nil {
		t.Fatal(err)
	}

	// Random loss: 50% of 200 requests, within a wide band.
	if err := l.Loss(ctx, "isp1", 50); err != nil {
		t.Fatal(err)
	}
	if loss := ping(t, l, "fw1", u1.Addr4, s.Gateway4, 200); loss < 25 || loss > 75 {
		t.Errorf("50%% loss fault: measured %d%%", loss)
	}
	if err := l.AddFault(ctx, "isp1", Fault{Loss: 0}); err == nil {
		t.Error("AddFault accepted loss 0%")
	}
	if err := l.AddFault(ctx, "isp1", Fault{Loss: 10, Interface: "br0; flush"}); err == nil {
		t.Error("AddFault accepted a bad interface name")
	}
}

func TestCloseAndSweep(t *testing.T) {
	Require(t)
	ctx := context.Background()
	l, err := New(ctx, Options{ISPs: 1, Firewalls: 1, NoWitness: true, NoLAN: true})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{l.Netns("fw1"), l.Netns("isp1")}
	// A stale namespace from a run whose pid is gone (pid 2^22+1 is above pid_max's default).
	stale := NamePrefix + "4194305-1-fw1"
	if err := run(ctx, "ip", "netns", "add", stale); err != nil {
		t.Fatal(err)
	}
	gone, err := Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(gone, stale) {
		t.Errorf("Sweep removed %v, want %s among them", gone, stale)
	}
	for _, n := range names {
		if slices.Contains(gone, n) {
			t.Errorf("Sweep removed live namespace %s", n)
		}
		if _, err := os.Stat(NetnsDir + "/" + n); err != nil {
			t.Errorf("live namespace %s: %v", n, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, n := range append(names, stale) {
		if _, err := os.Stat(NetnsDir + "/" + n); !os.IsNotExist(err) {
			t.Errorf("namespace %s still there after Close (%v)", n, err)
		}
	}
}

func TestOwnerPID(t *testing.T) {
	for name, want := range map[string]int{"gwlab-123-4-fw1": 123, "gwlab-x-1-fw1": 0, "other-1-1": 0, "gwlab-": 0} {
		got, _ := ownerPID(name)
		if got != want {
			t.Errorf("ownerPID(%q) = %d, want %d", name, got, want)
		}
	}
}
