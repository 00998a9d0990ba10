package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gwstated/internal/testkit"
)

// runAsGwctl makes the test binary behave as gwctl (TestMain), so the
// shell tests call the code under test without building it.
const runAsGwctl = "GWCTL_TEST_RUN_AS_GWCTL"

const completionConfig = `
cluster: {name: office}
links:
  - {name: isp1, interface: fxp0, gateway: 198.51.100.100}
  - {name: isp2, interface: fxp1, gateway: 203.0.113.200}
  - {name: "lte; reboot", interface: fxp2, gateway: 192.0.2.1}
  - {name: "$(touch /tmp/pwned)", interface: fxp3, gateway: 192.0.2.2}
  - {name: "two\nlines", interface: fxp4, gateway: 192.0.2.3}
  - {name: backup, interface: fxp5, gateway: 192.0.2.4}
nodes: {fw1: {}, fw2: {}, "fw3 x": {}, witness: {witness: true}}
`

func writeCompletionConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gwstated.yaml")
	if err := os.WriteFile(path, []byte(completionConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestComplete(t *testing.T) {
	cfg := writeCompletionConfig(t)
	noFile := func(string) ([]byte, error) { return nil, os.ErrNotExist }
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{""}, []string{"check", "completion", "ctsync", "drain", "help", "history", "keygen", "render", "status", "undrain"}},
		{[]string{"d"}, []string{"drain"}},
		{[]string{"__"}, nil}, // the hidden command is never offered
		{[]string{"help", "un"}, []string{"undrain"}},
		{[]string{"ctsync", "b"}, []string{"backup"}},
		{[]string{"history", "--l"}, []string{"--limit", "--link"}},
		{[]string{"render", "-"}, []string{"--config", "--json", "--node", "--up"}},
		{[]string{"render", "--config", ""}, []string{":files"}},
		{[]string{"keygen", "--out", "/tm"}, []string{":files"}},
		{[]string{"drain", "--config", cfg, ""}, []string{"isp1", "isp2", "backup"}},
		{[]string{"drain", "--config", cfg, "i"}, []string{"isp1", "isp2"}},
		{[]string{"drain", "--config", cfg, "isp1", ""}, nil}, // one link only
		{[]string{"drain", "--config", cfg, "isp1", "--r"}, []string{"--reason"}},
		{[]string{"undrain", "--config=" + cfg, "b"}, []string{"backup"}},
		// bash splits at "=": "--config", "=", "FILE"
		{[]string{"undrain", "--config", "=", cfg, "b"}, []string{"backup"}},
		{[]string{"history", "--config", cfg, "--json", "--link", ""}, []string{"isp1", "isp2", "backup"}},
		{[]string{"render", "--config", cfg, "--up", "isp1,"}, []string{"isp1,isp2", "isp1,backup"}},
		{[]string{"render", "--config", cfg, "--up", "isp1,b"}, []string{"isp1,backup"}},
		{[]string{"check", "--config", cfg, "--node", ""}, []string{"fw1", "fw2", "witness"}},
		{[]string{"drain", "--config", filepath.Join(t.TempDir(), "missing.yaml"), ""}, nil},
		{[]string{"completion", ""}, []string{"bash", "zsh"}},
		{[]string{"nosuch", ""}, nil},
	} {
		got := complete(c.words, os.ReadFile)
		if !slices.Equal(got, c.want) {
			t.Errorf("complete(%q) = %q, want %q", c.words, got, c.want)
		}
	}
	// Without --config the default locations are read.
	read := func(p string) ([]byte, error) {
		if p == "/etc/gwstated/gwstated.yaml" {
			return []byte(completionConfig), nil
		}
		return noFile(p)
	}
	if got := complete([]string{"drain", "is"}, read); !slices.Equal(got, []string{"isp1", "isp2"}) {
		t.Errorf("links from the default config: %q", got)
	}
	if got := complete([]string{"drain", ""}, noFile); got != nil {
		t.Errorf("no config anywhere: %q, want nothing", got)
	}
	// A file being edited that is not YAML gives no names, and no error.
	bad := func(string) ([]byte, error) { return []byte("links: [\n"), nil }
	if got := complete([]string{"drain", "--config", "x", ""}, bad); got != nil {
		t.Errorf("broken YAML: %q", got)
	}
}

func TestCompletionCommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"completion", "bash"}, exitOK, "complete -F _gwctl gwctl"},
		{[]string{"completion", "zsh"}, exitOK, "#compdef gwctl"},
		{[]string{"completion"}, exitUsage, ""},
		{[]string{"completion", "fish"}, exitUsage, ""},
		{[]string{"completion", "bash", "zsh"}, exitUsage, ""},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), c.args, &stdio{out: &out, err: &errb})
		if code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("gwctl %q: exit %d, want %d; output %.60q lacks %q (stderr %q)", c.args, code, c.code, out.String(), c.want, errb.String())
		}
	}
	var out bytes.Buffer
	run(context.Background(), []string{"help"}, &stdio{out: &out, err: &out})
	if strings.Contains(out.String(), completeCommand) {
		t.Errorf("gwctl help lists the hidden %s command:\n%s", completeCommand, out.String())
	}
}

// gwctlOnPath puts this test binary on PATH as gwctl (see runAsGwctl) and
// returns the environment for a shell, with HOME in a temp dir.
func gwctlOnPath(t *testing.T) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, "gwctl")); err != nil {
		t.Fatal(err)
	}
	return []string{"PATH=" + dir + ":/usr/bin:/bin", "HOME=" + dir, runAsGwctl + "=1", "LC_ALL=C"}
}

func needShell(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testkit.SkipOrRequire(t, name+" not found (apt-get install "+name+")")
	}
	return p
}

// TestBashCompletion sources the bash script and runs its completion
// function the way bash does on TAB, with COMP_WORDS and COMP_CWORD set.
func TestBashCompletion(t *testing.T) {
	bash := needShell(t, "bash")
	env := gwctlOnPath(t)
	cfg := writeCompletionConfig(t)
	script := filepath.Join(t.TempDir(), "gwctl.bash")
	if err := os.WriteFile(script, []byte(bashCompletion), 0o644); err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	for _, f := range []string{"a.yaml", "b.yaml"} {
		if err := os.WriteFile(filepath.Join(files, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		line string // the words typed, the last one being completed
		want []string
	}{
		{"gwctl ", []string{"check", "completion", "ctsync", "drain", "help", "history", "keygen", "render", "status", "undrain"}},
		{"gwctl st", []string{"status"}},
		{"gwctl status --w", []string{"--watch"}},
		{"gwctl drain --config " + cfg + " ", []string{"isp1", "isp2", "backup"}},
		{"gwctl render --config " + cfg + " --up isp2,", []string{"isp2,isp1", "isp2,backup"}},
		{"gwctl check --config " + files + "/", []string{files + "/a.yaml", files + "/b.yaml"}},
		{"gwctl nosuch ", nil},
	} {
		words := strings.Split(c.line, " ")
		prog := `source "$1"; shift
complete -p gwctl >/dev/null || exit 3
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
_gwctl gwctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, append([]string{"--norc", "--noprofile", "-c", prog, "bash", script}, words...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%q: %v\n%s", c.line, err, out)
			continue
		}
		got := strings.Fields(string(out))
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("bash completion of %q = %q, want %q", c.line, got, want)
		}
	}
	if _, err := os.Stat("/tmp/pwned"); err == nil {
		t.Error("/tmp/pwned exists: a link name from the config was run by the shell")
	}
}

// TestZshCompletion checks the zsh script's syntax (zsh -n) and runs its
// function with compadd and _files replaced by functions that print what
// they are given (a real completion needs a terminal: zpty).
func TestZshCompletion(t *testing.T) {
	zsh := needShell(t, "zsh")
	env := gwctlOnPath(t)
	cfg := writeCompletionConfig(t)
	script := filepath.Join(t.TempDir(), "_gwctl")
	if err := os.WriteFile(script, []byte(zshCompletion), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	for _, c := range []struct {
		line string
		want []string
	}{
		{"gwctl ", []string{"check", "completion", "ctsync", "drain", "help", "history", "keygen", "render", "status", "undrain"}},
		{"gwctl dr", []string{"drain"}},
		{"gwctl history --config " + cfg + " --link i", []string{"isp1", "isp2"}},
		{"gwctl check --config " + cfg + " --node w", []string{"witness"}},
		{"gwctl render --config ", []string{"_files"}},
		{"gwctl nosuch ", nil},
	} {
		words := strings.Split(c.line, " ")
		prog := `compdef() { :; }
compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }
_files() { print -r -- _files; }
source "$1"; shift
words=("$@"); CURRENT=$#
_gwctl`
		cmd := exec.Command(zsh, append([]string{"-f", "-c", prog, "zsh", script}, words...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil && len(c.want) > 0 {
			t.Errorf("%q: %v\n%s", c.line, err, out)
			continue
		}
		got := strings.Fields(string(out))
		if !slices.Equal(got, c.want) {
			t.Errorf("zsh completion of %q = %q, want %q", c.line, got, c.want)
		}
	}
}
