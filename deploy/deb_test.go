package deploy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gwstated/config"
)

// debFiles are the paths every package must hold (dpkg-deb --contents).
var debFiles = []string{
	"./usr/sbin/gwstated",
	"./usr/bin/gwctl",
	"./usr/share/man/man8/gwstated.8.gz",
	"./usr/share/man/man8/gwctl.8.gz",
	"./usr/share/man/man5/gwstated.yaml.5.gz",
	"./lib/systemd/system/gwstated.service",
	"./lib/systemd/system/gwstated-witness.service",
	"./usr/lib/sysusers.d/gwstated.conf",
	"./etc/gwstated/gwstated.yaml",
	"./etc/default/gwstated",
	"./usr/share/bash-completion/completions/gwctl",
	"./usr/share/zsh/vendor-completions/_gwctl",
	"./usr/share/gwstated/prometheus/gwstated-alerts.yml",
	"./usr/share/gwstated/prometheus/prometheus.yml",
	"./usr/share/gwstated/grafana/gwstated.json",
	"./usr/share/doc/gwstated/copyright",
	"./usr/share/doc/gwstated/changelog.gz",
	"./usr/share/doc/gwstated/examples/keepalived.conf",
	"./usr/share/doc/gwstated/examples/conntrackd.conf",
	"./usr/share/doc/gwstated/examples/linux-pair.yaml",
	"./usr/share/lintian/overrides/gwstated",
}

// TestDeb runs make deb into temp directories, once for both
// architectures and again for amd64, and checks the packages: the same
// bytes both times (reproducible), the files and
// conffiles, binaries of the right architecture, an example config that
// validates for each of its nodes with paths the units let the agent
// write, and lintian without errors (its warnings are logged).
func TestDeb(t *testing.T) {
	if testing.Short() {
		t.Skip("make deb cross-compiles twice: skipped with -short")
	}
	needTool(t, "dpkg-deb", "dpkg")
	lintian := needTool(t, "lintian", "lintian")
	mk := needTool(t, "make", "make")
	build := func(archs string) map[string][]byte {
		out := t.TempDir()
		// Version and time pinned: a commit made while the test runs must
		// not make the two builds differ.
		cmd := exec.Command(mk, "-C", "..", "deb", "DEB_ARCHS="+archs, "DEB_OUT="+out, "DEB_BUILD="+filepath.Join(out, "build"),
			"DEB_VERSION=0~reprotest", "DEB_EPOCH=1764547200")
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make deb: %v\n%s", err, b)
		}
		debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
		m := map[string][]byte{}
		for _, d := range debs {
			data, err := os.ReadFile(d)
			if err != nil {
				t.Fatal(err)
			}
			m[d] = data
		}
		return m
	}
	first := build("amd64 arm64")
	second := build("amd64") // compressing 50 MB twice more is slow: one architecture shows it
	if len(first) != 2 {
		t.Fatalf("make deb made %d packages, want 2 (amd64, arm64)", len(first))
	}
	sums := func(m map[string][]byte) map[string]string {
		s := map[string]string{}
		for p, b := range m {
			s[filepath.Base(p)] = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		return s
	}
	s1, s2 := sums(first), sums(second)
	for name, sum := range s2 {
		if s1[name] != sum {
			t.Errorf("%s: two builds differ (%s, %s): not reproducible", name, s1[name], sum)
		}
	}
	for path, data := range first {
		name := filepath.Base(path)
		arch := strings.TrimSuffix(name[strings.LastIndexByte(name, '_')+1:], ".deb")
		t.Run(arch, func(t *testing.T) {
			t.Logf("%s: %d bytes", name, len(data))
			checkDeb(t, path, arch, lintian)
		})
	}
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func checkDeb(t *testing.T, deb, arch, lintian string) {
	if got := strings.TrimSpace(dpkgDeb(t, "--field", deb, "Architecture")); got != arch {
		t.Errorf("Architecture %q, want %q", got, arch)
	}
	var paths []string
	for _, line := range strings.Split(dpkgDeb(t, "--contents", deb), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", f[5], f[1])
		}
		paths = append(paths, f[5])
	}
	for _, want := range debFiles {
		if !slices.Contains(paths, want) {
			t.Errorf("package lacks %s", want)
		}
	}
	dir := t.TempDir()
	dpkgDeb(t, "--raw-extract", deb, dir)
	conffiles, err := os.ReadFile(filepath.Join(dir, "DEBIAN", "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(conffiles)); !slices.Equal(got, []string{"/etc/default/gwstated", "/etc/gwstated/gwstated.yaml"}) {
		t.Errorf("conffiles %q", got)
	}
	// The binaries are static ELF files for arch.
	machine := map[string]string{"amd64": "x86-64", "arm64": "aarch64"}[arch]
	for _, bin := range []string{"usr/sbin/gwstated", "usr/bin/gwctl"} {
		b, err := os.ReadFile(filepath.Join(dir, bin))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x7fELF")) {
			t.Errorf("%s is not an ELF file", bin)
		}
		if out, err := exec.Command("file", "-b", filepath.Join(dir, bin)).Output(); err == nil &&
			(!strings.Contains(string(out), machine) || !strings.Contains(string(out), "statically linked")) {
			t.Errorf("%s: %s; want a static %s binary", bin, out, machine)
		}
	}
	// The example config validates for every node, and the paths it makes
	// the agent write lie in the units' writable directories.
	data, err := os.ReadFile(filepath.Join(dir, "etc", "gwstated", "gwstated.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range nodesOf(t, data) {
		cfg, err := config.Parse(data, node, config.Offline())
		if err != nil {
			t.Errorf("/etc/gwstated/gwstated.yaml for node %s: %v", node, err)
			continue
		}
		if em := cfg.Embed(); em != nil && !strings.HasPrefix(em.DataDir, "/var/lib/gwstated/") {
			t.Errorf("node %s: etcd data_dir %s is outside the unit's StateDirectory /var/lib/gwstated", node, em.DataDir)
		}
	}

	out, err := exec.Command(lintian, "--fail-on", "error", "--tag-display-limit", "0", deb).CombinedOutput()
	if err != nil {
		t.Errorf("lintian %s: %v\n%s", filepath.Base(deb), err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "E:") {
			t.Errorf("lintian: %s", line)
		} else if line != "" {
			t.Logf("lintian: %s", line)
		}
	}
}
