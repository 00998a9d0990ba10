package redundancy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"gwstated/pfapply/pfemu"
)

// TestDemoterBoundsOnEmulator runs the Demoter against the emulated
// ifconfig and kernel: carpdemote takes 0-128 (ifconfig.c 1.476) and the
// group counter stays within 0-255 (if.c 1.741). A refused demotion is
// reported with the counter read back and retried until it goes through.
func TestDemoterBoundsOnEmulator(t *testing.T) {
	ctx := context.Background()
	emu := pfemu.New(pfemu.Options{})
	emu.SetCARP("carp0", pfemu.CARP{State: "MASTER", Carpdev: "em0", VHID: 1, Advbase: 1})

	if _, err := NewDemoter(emu, "", "carp", MaxDemoteStep+1); err == nil {
		t.Error("carp.demote 129 accepted: ifconfig refuses it")
	}
	d, err := NewDemoter(emu, "", "carp", 100)
	if err != nil {
		t.Fatal(err)
	}
	// rc(8) holds 128 while daemons start, an operator adds 50 more: our
	// 100 would take the counter to 278.
	emu.SetGroup("carp", 178)
	changed, err := d.Set(ctx, true)
	var de *DemoteError
	if changed || !errors.Is(err, ErrDemoteRefused) || !errors.As(err, &de) || de.Counter != 178 || de.Change != 100 {
		t.Fatalf("Set(true) at 178: changed %v, err %v", changed, err)
	}
	if !strings.Contains(err.Error(), "counter now 178") || !strings.Contains(err.Error(), "SIOCSIFGATTR: Invalid argument") {
		t.Errorf("error does not say what happened: %v", err)
	}
	if d.Demoted() || !d.Pending() {
		t.Errorf("after a refusal: demoted %v, pending %v", d.Demoted(), d.Pending())
	}
	if n, _ := emu.Demotion("carp"); n != 178 {
		t.Errorf("counter %d after a refusal", n)
	}
	// Still refused while nothing changed.
	if _, err := d.Retry(ctx); !errors.Is(err, ErrDemoteRefused) {
		t.Errorf("retry at 178: %v", err)
	}
	// rc(8) lowers its 128 after boot: the retry gets through.
	emu.SetGroup("carp", 50)
	if changed, err := d.Retry(ctx); !changed || err != nil || !d.Demoted() || d.Pending() {
		t.Fatalf("retry at 50: %v, %v", changed, err)
	}
	if n, _ := emu.Demotion("carp"); n != 150 {
		t.Errorf("counter %d, want 150", n)
	}
	if n, err := d.Counter(ctx); n != 150 || err != nil {
		t.Errorf("Counter: %d, %v", n, err)
	}
	// Someone lowered the counter below our share: the undo is refused
	// (it would go below 0), logged with the counter, and retried.
	emu.SetGroup("carp", 30)
	if _, err := d.Set(ctx, false); !errors.As(err, &de) || de.Counter != 30 || de.Change != -100 {
		t.Fatalf("undo at 30: %v", err)
	}
	if !d.Demoted() || !d.Pending() {
		t.Errorf("after a refused undo: demoted %v, pending %v", d.Demoted(), d.Pending())
	}
	emu.SetGroup("carp", 120)
	if changed, err := d.Retry(ctx); !changed || err != nil || d.Demoted() {
		t.Fatalf("undo retried: %v, %v", changed, err)
	}
	if n, _ := emu.Demotion("carp"); n != 20 {
		t.Errorf("counter %d, want 20", n)
	}
	// Up to the bound exactly: 155 + 100 = 255 is accepted.
	emu.SetGroup("carp", 155)
	if changed, err := d.Set(ctx, true); !changed || err != nil {
		t.Errorf("demote to 255: %v, %v", changed, err)
	}
	if _, err := d.Retry(ctx); err != nil {
		t.Errorf("Retry with nothing pending: %v", err)
	}
}

func TestReadCARPOnEmulator(t *testing.T) {
	emu := pfemu.New(pfemu.Options{})
	emu.SetCARP("carp1", pfemu.CARP{State: "BACKUP", Carpdev: "em1", VHID: 2, Advbase: 1, Advskew: 100})
	got, err := ReadCARP(context.Background(), emu, "", "carp1")
	if err != nil || len(got) != 1 || got[0] != (CARPVHID{Interface: "carp1", State: "BACKUP", Carpdev: "em1", VHID: 2, Advbase: 1, Advskew: 100}) {
		t.Errorf("ReadCARP: %+v, %v", got, err)
	}
	if _, err := ReadCARP(context.Background(), emu, "", "carp7"); err == nil || !strings.Contains(err.Error(), "no such interface") {
		t.Errorf("ReadCARP of a missing interface: %v", err)
	}
}

func TestParseGroupDemote(t *testing.T) {
	if n, err := ParseGroupDemote("carp", []byte("carp: carp demote count 128\n")); n != 128 || err != nil {
		t.Errorf("%d, %v", n, err)
	}
	for _, bad := range []string{"", "wan: carp demote count 1\n", "carp: carp demote count x\n", "carp: carp demote count -1\n"} {
		if _, err := ParseGroupDemote("carp", []byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
