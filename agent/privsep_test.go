package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestUnveilRules(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := Paths{
		Config: "/etc/gwstated.yaml",
		Read:   []string{"/etc/gwstated/gossip.key", "", "/etc/gwstated/etcd/ca.pem", "/etc/gwstated.yaml"},
		Write:  []string{"/var/db/gwstated", "/var/db/gwstated/anchors/", "/var/db/gwstated"},
		Exec:   DefaultExec,
	}
	want := []unveilRule{
		{"/etc/resolv.conf", "r"},
		{"/etc/hosts", "r"},
		{"/dev/null", "rw"},
		{"/etc/gwstated.yaml", "r"},
		{"/etc/gwstated/gossip.key", "r"},
		{"/etc/gwstated/etcd/ca.pem", "r"},
		{"/var/db/gwstated", "rwc"},
		{"/var/db/gwstated/anchors", "rwc"},
		{"/sbin/pfctl", "rx"},
		{"/sbin/route", "rx"},
		{"/sbin/ifconfig", "rx"},
	}
	if got := unveilRules(p); !reflect.DeepEqual(got, want) {
		t.Errorf("unveilRules:\n got %v\nwant %v", got, want)
	}
}

func TestUnveilRulesMergePermissions(t *testing.T) {
	// A path named as config, writable dir and program gets every permission,
	// once, in canonical order; unveil(2) is called once per path.
	p := Paths{Config: "/x", Write: []string{"/x"}, Exec: []string{"/x/"}}
	got := unveilRules(p)
	last := got[len(got)-1]
	if last != (unveilRule{"/x", "rwxc"}) || len(got) != len(systemUnveils)+1 {
		t.Errorf("unveilRules(%+v) = %v, want one rule /x rwxc after the system files", p, got)
	}
	if got := unveilRules(Paths{}); !reflect.DeepEqual(got, systemUnveils) {
		t.Errorf("unveilRules(zero) = %v, want only the system files %v", got, systemUnveils)
	}
}

func TestUnionPerms(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"", "", ""},
		{"c", "r", "rc"},
		{"xr", "wc", "rwxc"},
		{"rwc", "rwc", "rwc"},
		{"q", "r", "r"}, // unknown letters never reach unveil(2)
	} {
		if got := unionPerms(c.a, c.b); got != c.want {
			t.Errorf("unionPerms(%q, %q) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

func TestPromises(t *testing.T) {
	// Every promise must be one pledge(2) knows (an unknown one makes
	// pledge fail with EINVAL), appear once, and say what it is for.
	known := map[string]bool{}
	for _, n := range strings.Fields("audio bpf chown cpath disklabel dns dpath drm error exec fattr " +
		"flock getpw id inet mcast pf proc prot_exec ps recvfd route rpath sendfd settime " +
		"stdio tape tmppath tty unix unveil video vminfo vmm wpath wroute") {
		known[n] = true
	}
	seen := map[string]bool{}
	for _, p := range promises {
		if !known[p.Name] {
			t.Errorf("promise %q is not a pledge(2) promise", p.Name)
		}
		if seen[p.Name] {
			t.Errorf("promise %q listed twice", p.Name)
		}
		seen[p.Name] = true
		if len(p.Why) < 20 {
			t.Errorf("promise %q: reason %q does not say what it is for", p.Name, p.Why)
		}
	}
	// The set the daemon needs, no more: exec without proc cannot fork, and
	// "unveil" must be absent so the veil stays locked.
	for _, need := range []string{"stdio", "rpath", "wpath", "cpath", "inet", "proc", "exec"} {
		if !seen[need] {
			t.Errorf("promise %q missing from %q", need, Promises())
		}
	}
	for _, never := range []string{"unveil", "id", "prot_exec", "settime", "chown"} {
		if seen[never] {
			t.Errorf("promise %q must not be in %q", never, Promises())
		}
	}
	if got := strings.Fields(Promises()); len(got) != len(promises) {
		t.Errorf("Promises() = %q, want %d promises", Promises(), len(promises))
	}
}

func TestRestrictKeepsFilesReachable(t *testing.T) {
	// Restrict must leave every path it was given usable. Outside OpenBSD it
	// is a no-op, so this checks the contract the agent relies on; on
	// OpenBSD privsep_openbsd_test.go checks the veil in a child process.
	if runtime.GOOS == "openbsd" {
		t.Skip("Restrict is irreversible on OpenBSD; see TestRestrictVeil")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gwstated.yaml")
	if err := os.WriteFile(cfg, []byte("node: fw1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Restrict(Paths{Config: cfg, Write: []string{dir}, Exec: DefaultExec, Pledge: true}); err != nil {
		t.Fatalf("Restrict: %v", err)
	}
	if _, err := os.ReadFile(cfg); err != nil {
		t.Errorf("config unreadable after Restrict: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{}"), 0o600); err != nil {
		t.Errorf("state dir not writable after Restrict: %v", err)
	}
}

func TestWitnessPromises(t *testing.T) {
	all := strings.Fields(Promises())
	for _, w := range strings.Fields(WitnessPromises()) {
		if !slices.Contains(all, w) {
			t.Errorf("witness promise %q is not one of the firewall's %q", w, Promises())
		}
	}
	for _, never := range []string{"proc", "exec"} {
		if slices.Contains(strings.Fields(WitnessPromises()), never) {
			t.Errorf("a witness runs no programs: %q must not be in %q", never, WitnessPromises())
		}
	}
}
