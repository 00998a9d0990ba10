package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// unitFile is a systemd unit: section -> key -> values in order (a key may
// be given more than once).
type unitFile map[string]map[string][]string

func readUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: cannot read line %q", path, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one returns the single value of a [Service] key ("" when absent).
func (u unitFile) one(t *testing.T, key string) string {
	t.Helper()
	v := u["Service"][key]
	if len(v) > 1 {
		t.Errorf("[Service] %s is set %d times", key, len(v))
	}
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

var units = []string{"gwstated.service", "gwstated-witness.service"}

// TestSystemdUnits checks what the units promise: a firewall node gets
// CAP_NET_RAW and CAP_NET_ADMIN and nothing else, a witness no capability;
// both run as gwstated on a read-only system with only their state (and,
// for a router, run) directory writable, restricted address families and
// system calls, and SIGHUP for reload. The witness unit is at least as
// tight as the router's on every hardening setting.
func TestSystemdUnits(t *testing.T) {
	fw := readUnit(t, filepath.Join("linux", "gwstated.service"))
	wit := readUnit(t, filepath.Join("linux", "gwstated-witness.service"))
	for name, want := range map[string]string{
		"CapabilityBoundingSet":   "CAP_NET_RAW CAP_NET_ADMIN",
		"AmbientCapabilities":     "CAP_NET_RAW CAP_NET_ADMIN",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_NETLINK AF_UNIX",
		"RuntimeDirectory":        "gwstated",
	} {
		if got := fw.one(t, name); got != want {
			t.Errorf("gwstated.service: %s=%s, want %s", name, got, want)
		}
	}
	for name, want := range map[string]string{
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_NETLINK",
		"RuntimeDirectory":        "",
		"PrivateUsers":            "yes",
		"NoExecPaths":             "/",
		"ExecPaths":               "/usr/sbin/gwstated",
	} {
		if got := wit.one(t, name); got != want {
			t.Errorf("gwstated-witness.service: %s=%s, want %q", name, got, want)
		}
	}
	for i, u := range []unitFile{fw, wit} {
		name := units[i]
		for key, want := range map[string]string{
			"User": "gwstated", "Group": "gwstated", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
			"StateDirectory": "gwstated", "ExecReload": "/bin/kill -HUP $MAINPID", "SystemCallArchitectures": "native",
			"ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "MemoryDenyWriteExecute": "yes",
		} {
			if got := u.one(t, key); got != want {
				t.Errorf("%s: %s=%s, want %s", name, key, got, want)
			}
		}
		if got := u["Service"]["SystemCallFilter"]; !slices.Contains(got, "@system-service") || !slices.Contains(got, "~@privileged @resources") {
			t.Errorf("%s: SystemCallFilter %q, want @system-service less @privileged @resources", name, got)
		}
		start := u.one(t, "ExecStart")
		if !strings.HasPrefix(start, "/usr/sbin/gwstated ") || !strings.Contains(start, "--state-dir /var/lib/gwstated ") ||
			!strings.Contains(start, "--config /etc/gwstated/gwstated.yaml ") {
			t.Errorf("%s: ExecStart=%s: want /usr/sbin/gwstated with --config /etc/gwstated/gwstated.yaml and the StateDirectory as --state-dir", name, start)
		}
		if strings.Contains(start, "--witness") != (i == 1) {
			t.Errorf("%s: ExecStart=%s: --witness on the witness only", name, start)
		}
	}
	// The witness drops nothing the router's unit hardens.
	for key, vals := range fw["Service"] {
		if len(vals) == 1 && (vals[0] == "yes" || vals[0] == "strict") {
			if got := wit.one(t, key); got != vals[0] {
				t.Errorf("gwstated-witness.service: %s=%q, but gwstated.service has %s", key, got, vals[0])
			}
		}
	}
}

// buildAgent builds cmd/agent into dir/gwstated.
func buildAgent(t *testing.T, dir string) string {
	t.Helper()
	goBin := needTool(t, "go", "golang-go")
	bin := filepath.Join(dir, "gwstated")
	cmd := exec.Command(goBin, "build", "-o", bin, "../cmd/agent")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/agent: %v\n%s", err, out)
	}
	return bin
}

// TestSystemdVerify runs systemd-analyze verify on both units. verify
// wants every ExecStart program to exist and every Documentation man page
// to be installed, so it runs on copies whose /usr/sbin/gwstated is a
// freshly built agent in a temp dir, with MANPATH pointing at this
// repository's pages; any message (verify exits 0 even on an unknown key)
// fails the test. The command lines of ExecStartPre and ExecStart then run
// that agent with --check on the Debian example config, so a flag the
// agent does not have fails here too.
func TestSystemdVerify(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	bin := buildAgent(t, dir)
	man := filepath.Join(dir, "man")
	for _, p := range []struct{ page, sec string }{{"gwstated.8", "8"}, {"gwctl.8", "8"}, {"gwstated.yaml.5", "5"}} {
		b, err := os.ReadFile(filepath.Join("man", p.page))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(man, "man"+p.sec), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(man, "man"+p.sec, p.page), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var copies []string
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join("linux", u))
		if err != nil {
			t.Fatal(err)
		}
		c := filepath.Join(dir, u)
		if err := os.WriteFile(c, []byte(strings.ReplaceAll(string(b), "/usr/sbin/gwstated", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, c)
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, copies...)...)
	cmd.Env = append(os.Environ(), "MANPATH="+man, "SYSTEMD_LOG_LEVEL=info")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	example, err := filepath.Abs(filepath.Join("debian", "gwstated.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range units {
		unit := readUnit(t, filepath.Join("linux", u))
		node := map[int]string{0: "fw1", 1: "witness"}[i]
		for _, key := range []string{"ExecStartPre", "ExecStart"} {
			line := unit.one(t, key)
			args := strings.Fields(strings.ReplaceAll(line, "$GWSTATED_ARGS", "--node "+node))[1:]
			for j := range args {
				if args[j] == "/etc/gwstated/gwstated.yaml" {
					args[j] = example
				}
			}
			if key == "ExecStart" {
				args = append(args, "--check") // parse the flags, check the config, do not run
			}
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				t.Errorf("%s %s as node %s: gwstated %s: %v\n%s", u, key, node, strings.Join(args, " "), err, out)
			}
		}
	}
}

// TestSystemdSecurity reports systemd-analyze security's exposure score of
// each unit (offline: no running system manager is needed) and fails when
// a change makes it worse than the bound it was written to.
func TestSystemdSecurity(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	bound := map[string]float64{"gwstated.service": 1.6, "gwstated-witness.service": 1.1}
	re := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	for _, u := range units {
		path, err := filepath.Abs(filepath.Join("linux", u))
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", path).CombinedOutput()
		m := re.FindSubmatch(out)
		if err != nil || m == nil {
			if strings.Contains(string(out), "offline") && strings.Contains(string(out), "nrecognized") {
				t.Skipf("systemd-analyze security has no --offline (systemd < 252): %s", out)
			}
			t.Fatalf("systemd-analyze security --offline=true %s: %v\n%s", u, err, out)
		}
		score, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("%s: exposure %.1f", u, score)
		if score > bound[u] {
			t.Errorf("%s: exposure %.1f, worse than %.1f", u, score, bound[u])
		}
	}
}
