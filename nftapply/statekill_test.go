package nftapply_test

import (
	"context"
	"errors"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gwstated/nftapply"
)

// ctEntry is one conntrack entry a test inserts: a UDP flow told apart by
// its source port.
type ctEntry struct {
	family int
	sport  int
	mark   uint32
}

// insertEntries puts es into ns's conntrack table (conntrack -I).
func insertEntries(t *testing.T, ns string, es []ctEntry) {
	t.Helper()
	for _, e := range es {
		src, dst := "192.168.0.10", "192.0.2.53"
		if e.family == 6 {
			src, dst = "2001:db8:100::10", "2001:db8:53::53"
		}
		inNetns(t, ns, "conntrack", "-I", "-p", "udp", "-s", src, "-d", dst,
			"--sport", strconv.Itoa(e.sport), "--dport", "53", "--timeout", "300", "--mark", strconv.FormatUint(uint64(e.mark), 10))
	}
}

// listEntries reads ns's conntrack table: family/sport → mark.
func listEntries(t *testing.T, ns string) map[ctEntry]bool {
	t.Helper()
	got := map[ctEntry]bool{}
	for _, fam := range []int{4, 6} {
		// conntrack -L exits 0 with an empty table; its summary goes to stderr.
		out, err := exec.CommandContext(t.Context(), "ip", "netns", "exec", ns, "conntrack", "-L", "-f", "ipv"+strconv.Itoa(fam)).Output()
		if err != nil {
			t.Fatalf("conntrack -L -f ipv%d: %v", fam, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			e := ctEntry{family: fam}
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "sport="); ok && e.sport == 0 {
					e.sport, _ = strconv.Atoi(v)
				}
				if v, ok := strings.CutPrefix(f, "mark="); ok {
					m, _ := strconv.ParseUint(v, 10, 32)
					e.mark = uint32(m)
				}
			}
			got[e] = true
		}
	}
	return got
}

// killerKinds are both StateKillers, opened for a namespace, with the
// processes one KillMark runs.
var killerKinds = []struct {
	name  string
	open  func(t *testing.T, ns string) nftapply.StateKiller
	procs int
}{
	{"netlink", func(t *testing.T, ns string) nftapply.StateKiller { return netlinkKiller(t, ns) }, 0},
	{"exec", func(t *testing.T, ns string) nftapply.StateKiller {
		return nftapply.ExecKiller{R: nftapply.ExecRunner{Netns: ns}}
	}, 1},
}

// TestStateKillerByMarkAndFamily: both killers delete exactly the entries
// of the one family whose mark equals the given mark on all 32 bits;
// entries of the other family with that mark, of other marks (including
// marks that share its low bits, and mark 0) stay. Deleting a mark with no
// entries is no error and changes nothing.
func TestStateKillerByMarkAndFamily(t *testing.T) {
	for _, kk := range killerKinds {
		t.Run(kk.name, func(t *testing.T) {
			ns := newNetns(t)
			k := kk.open(t, ns)
			var all []ctEntry
			port := 1000
			for _, fam := range []int{4, 6} {
				for _, m := range []uint32{0x100, 0x100, 0x101, 0x10100, 0x80000100, 0} {
					all = append(all, ctEntry{fam, port, m})
					port++
				}
			}
			insertEntries(t, ns, all)
			want := map[ctEntry]bool{}
			for _, e := range all {
				want[e] = true
			}
			if got := listEntries(t, ns); !maps.Equal(got, want) {
				t.Fatalf("inserted %v, table holds %v", all, got)
			}
			step := func(family int, mark uint32) {
				t.Helper()
				procs, err := k.KillMark(t.Context(), family, mark)
				if err != nil {
					t.Fatalf("KillMark(%d, %#x): %v", family, mark, err)
				}
				if procs != kk.procs {
					t.Errorf("KillMark ran %d processes, want %d", procs, kk.procs)
				}
				maps.DeleteFunc(want, func(e ctEntry, _ bool) bool { return e.family == family && e.mark == mark })
				if got := listEntries(t, ns); !maps.Equal(got, want) {
					t.Errorf("after KillMark(ipv%d, %#x): table %v, want %v", family, mark, keys(got), keys(want))
				}
			}
			step(4, 0x100)
			step(6, 0x101)
			step(4, 0x100) // none left: no error
			step(6, 0x42)  // never there
			step(6, 0x80000100)
		})
	}
}

func keys(m map[ctEntry]bool) []ctEntry {
	out := slices.Collect(maps.Keys(m))
	slices.SortFunc(out, func(a, b ctEntry) int { return a.sport - b.sport })
	return out
}

// TestStateKillerEmptyTable: no entry at all is no error.
func TestStateKillerEmptyTable(t *testing.T) {
	ns := newNetns(t)
	for _, kk := range killerKinds {
		k := kk.open(t, ns)
		for _, fam := range []int{4, 6} {
			if _, err := k.KillMark(t.Context(), fam, 0x100); err != nil {
				t.Errorf("%s: KillMark(ipv%d) on an empty table: %v", kk.name, fam, err)
			}
		}
	}
}

// TestNetlinkKillerRefuses: a namespace that does not exist or a name
// that is a path cannot be opened; a family other than 4 or 6 (which would
// be a flush of both) and a cancelled context are refused before anything
// is sent.
func TestNetlinkKillerRefuses(t *testing.T) {
	ns := newNetns(t)
	for _, bad := range []string{ns + "-missing", "../" + ns, "a/b", ".", "..", "." + ns} {
		if _, err := nftapply.OpenNetlinkKiller(bad); err == nil {
			t.Errorf("OpenNetlinkKiller(%q) opened", bad)
		}
	}
	insertEntries(t, ns, []ctEntry{{4, 1000, 0x100}, {6, 1001, 0x100}})
	k := netlinkKiller(t, ns)
	for _, fam := range []int{0, 2, 10} {
		if _, err := k.KillMark(t.Context(), fam, 0x100); err == nil {
			t.Errorf("KillMark(family %d) accepted", fam)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := k.KillMark(ctx, 4, 0x100); !errors.Is(err, context.Canceled) {
		t.Errorf("KillMark with a cancelled context: %v", err)
	}
	if got := listEntries(t, ns); len(got) != 2 {
		t.Errorf("refused calls changed the table: %v", got)
	}
}
