package redundancy

import (
	"context"
	"errors"
	"gwstated/internal/execrun/exectest"
	"reflect"
	"testing"
)

func TestParseCARP(t *testing.T) {
	single := `carp0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500
	lladdr 00:00:5e:00:01:01
	index 7 priority 15 llprio 3
	carp: MASTER carpdev em0 vhid 1 advbase 1 advskew 0
	groups: carp
	status: master
	inet 192.0.2.1 netmask 0xffffff00 broadcast 192.0.2.255
`
	unicast := "\tcarp: BACKUP carpdev em1 vhid 5 advbase 1 advskew 100 carppeer 192.0.2.3\n"
	multi := `carp1: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500
	carp: carpdev em2 advbase 1 balancing ip
		state MASTER vhid 1 advskew 0
		state BACKUP vhid 2 advskew 100
	groups: carp
`
	for _, tc := range []struct {
		iface, out string
		want       []CARPVHID
	}{
		{"carp0", single, []CARPVHID{{Interface: "carp0", State: "MASTER", Carpdev: "em0", VHID: 1, Advbase: 1, Advskew: 0}}},
		{"carp5", unicast, []CARPVHID{{Interface: "carp5", State: "BACKUP", Carpdev: "em1", VHID: 5, Advbase: 1, Advskew: 100}}},
		{"carp1", multi, []CARPVHID{
			{Interface: "carp1", State: "MASTER", Carpdev: "em2", VHID: 1, Advbase: 1, Advskew: 0},
			{Interface: "carp1", State: "BACKUP", Carpdev: "em2", VHID: 2, Advbase: 1, Advskew: 100},
		}},
	} {
		got, err := ParseCARP(tc.iface, []byte(tc.out))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.iface, got, err, tc.want)
		}
	}
	if _, err := ParseCARP("em0", []byte("em0: flags=8843<UP>\n\tgroups: egress\n")); err == nil {
		t.Error("no carp line: no error")
	}
	if _, err := ParseCARP("carp0", []byte("\tcarp: MASTER carpdev em0 vhid x advbase 1 advskew 0\n")); err == nil {
		t.Error("bad vhid: no error")
	}
}

func TestReadCARP(t *testing.T) {
	fr := &exectest.Runner{}
	fr.On(exectest.ArgsEqual("/sbin/ifconfig", "carp0"), "\tcarp: BACKUP carpdev em0 vhid 1 advbase 1 advskew 100\n", nil)
	got, err := ReadCARP(context.Background(), fr, "", "carp0")
	if err != nil || len(got) != 1 || got[0].State != "BACKUP" {
		t.Fatalf("ReadCARP: %+v, %v", got, err)
	}
	if _, err := ReadCARP(context.Background(), fr, "", "-a"); !errors.Is(err, ErrInterfaceName) {
		t.Errorf("ReadCARP(-a): %v, want ErrInterfaceName", err)
	}
	calls, _ := fr.Take()
	exectest.AssertCalls(t, "ReadCARP", calls, [][]string{{"/sbin/ifconfig", "carp0"}})
}

// TestDemoter: demote once when impaired, undo once when healthy, never
// twice, never someone else's; a failed ifconfig leaves the state as it was
// so the next call tries again.
func TestDemoter(t *testing.T) {
	ctx := context.Background()
	fr := &exectest.Runner{}
	d, err := NewDemoter(fr, "", "", 50)
	if err != nil {
		t.Fatal(err)
	}
	demote := []string{"/sbin/ifconfig", "-g", "carp", "carpdemote", "50"}
	undo := []string{"/sbin/ifconfig", "-g", "carp", "-carpdemote", "50"}

	// Healthy at start: someone else's demotion (rc(8)) is not ours to undo.
	if changed, err := d.Set(ctx, false); changed || err != nil {
		t.Fatalf("Set(false) at start: %v, %v", changed, err)
	}
	for range 2 {
		if _, err := d.Set(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	if !d.Demoted() {
		t.Error("not Demoted after Set(true)")
	}
	for range 2 {
		if _, err := d.Set(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	calls, _ := fr.Take()
	exectest.AssertCalls(t, "demote and undo", calls, [][]string{demote, undo})

	// A failing ifconfig: not demoted, and retried by the next call.
	fail := fr.On(exectest.ArgsEqual(demote...), "", exectest.CmdErr(1, "", "ifconfig: SIOCSIFGATTR: Operation not permitted"))
	fail.Times = 1
	if changed, err := d.Set(ctx, true); changed || err == nil || d.Demoted() {
		t.Fatalf("failing demote: changed %v, err %v, demoted %v", changed, err, d.Demoted())
	}
	if changed, err := d.Set(ctx, true); !changed || err != nil {
		t.Fatalf("retried demote: %v, %v", changed, err)
	}
	calls, _ = fr.Take()
	exectest.AssertCalls(t, "retry", calls, [][]string{demote, demote})

	off, err := NewDemoter(fr, "", "wan", 0)
	if err != nil {
		t.Fatal(err)
	}
	if changed, _ := off.Set(ctx, true); changed {
		t.Error("carp.demote 0 demoted")
	}
	if calls, _ := fr.Take(); len(calls) != 0 {
		t.Errorf("carp.demote 0 ran %q", calls)
	}
	for _, g := range []string{"-g", "carp0 ", "c/d", "CARP", "toolonggroupname0"} {
		if _, err := NewDemoter(fr, "", g, 50); !errors.Is(err, ErrInterfaceName) {
			t.Errorf("group %q: %v, want ErrInterfaceName", g, err)
		}
	}
}
