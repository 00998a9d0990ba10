package deploy

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gwstated/config"
	"gwstated/internal/testkit/golden"
	"gwstated/linkstate"
	"gwstated/pfapply"
)

// exampleConfigs returns the example configs, by file name.
func exampleConfigs(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no examples/*.yaml")
	}
	out := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// nodesOf returns the nodes a config file names (sorted), or [""] for a
// file without nodes, which any host may run.
func nodesOf(t *testing.T, data []byte) []string {
	t.Helper()
	cfg, err := config.Parse(data, "", config.Offline())
	if err != nil {
		t.Fatalf("config.Parse (offline): %v", err)
	}
	if len(cfg.Nodes) == 0 {
		return []string{""}
	}
	return slices.Sorted(maps.Keys(cfg.Nodes))
}

// TestExamplesValidate is `gwctl check --config F --node N` for every
// example file and every node it names: an example an admin copies must
// validate on each of its machines.
func TestExamplesValidate(t *testing.T) {
	for name, data := range exampleConfigs(t) {
		for _, node := range nodesOf(t, data) {
			t.Run(name+"/"+node, func(t *testing.T) {
				cfg, err := config.Parse(data, node)
				if err != nil {
					t.Fatalf("%s --node %q:\n%v", name, node, err)
				}
				if node != "" && cfg.Node != node {
					t.Errorf("Parse(%s, %q).Node = %q", name, node, cfg.Node)
				}
			})
		}
	}
}

// renderCase is one combination of links seen up; every other link is seen down.
type renderCase struct {
	up []string
}

func (c renderCase) String() string {
	if len(c.up) == 0 {
		return "none up"
	}
	return "up: " + strings.Join(c.up, ",")
}

// everyCombination returns every subset of links, all up first, none up last.
func everyCombination(links []config.Link) []renderCase {
	n := len(links)
	cases := make([]renderCase, 0, 1<<n)
	for mask := (1 << n) - 1; mask >= 0; mask-- {
		var up []string
		for i := range links {
			if mask&(1<<(n-1-i)) != 0 {
				up = append(up, links[i].Name)
			}
		}
		cases = append(cases, renderCase{up: up})
	}
	return cases
}

// verdictFor decides, as the cluster leader would, the verdict when every
// probing node sees exactly the links in up as up, from a fresh start
// (no previous verdict, no overrides).
func verdictFor(cfg *config.Config, up []string) linkstate.Verdict {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	view := linkstate.NodeView{Alive: true, Links: map[string]linkstate.Observation{}}
	for _, l := range cfg.Links {
		st := linkstate.Down
		if slices.Contains(up, l.Name) {
			st = linkstate.Up
		}
		view.Links[l.Name] = linkstate.Observation{Link: l.Name, State: st, Since: now.Add(-time.Minute)}
	}
	obs := linkstate.Observations{}
	for name, spec := range cfg.Nodes {
		if !spec.Witness {
			obs[name] = view
		}
	}
	if len(obs) == 0 {
		obs[cfg.Node] = view
	}
	v, _ := linkstate.Decide(linkstate.Verdict{}, obs, nil, cfg.Policy(), now)
	return v
}

// renderExample renders every combination of one example's links as the
// golden text: per case the verdict's active links, the default route and
// every anchor's rules.
func renderExample(t *testing.T, data []byte) (golden string, rules map[string]bool, cfg *config.Config) {
	t.Helper()
	nodes := nodesOf(t, data)
	cfg, err := config.Parse(data, nodes[0])
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	rules = map[string]bool{}
	var b strings.Builder
	fmt.Fprintf(&b, "# Rendered by deploy/examples_test.go (go test ./deploy -update), pf.syntax %s.\n", cfg.PF.Syntax)
	fmt.Fprintf(&b, "# Each case: the links every probing node sees up; all others down.\n")
	for _, c := range everyCombination(cfg.Links) {
		v := verdictFor(cfg, c.up)
		rs, err := pfapply.Render(cfg, v)
		if err != nil {
			t.Fatalf("%s: Render: %v", c, err)
		}
		fmt.Fprintf(&b, "\n=== %s\nactive: %s", c, strings.Join(v.Active, " "))
		if v.ActiveReason != "" {
			fmt.Fprintf(&b, " (%s)", v.ActiveReason)
		}
		route := "none"
		if rs.DefaultRoute.IsValid() {
			route = rs.DefaultRoute.String()
		}
		fmt.Fprintf(&b, "\ndefault route: %s\n", route)
		for _, a := range rs.Anchors {
			fmt.Fprintf(&b, "--- anchor %q (%s)\n", a.Name, a.Kind)
			b.WriteString(a.Rules)
			for _, line := range strings.Split(a.Rules, "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					rules[line] = true
				}
			}
		}
	}
	return b.String(), rules, cfg
}

// TestExamplesRender compares each example's rendering, for every
// combination of links up and down, with examples/golden/<example>.txt,
// and runs every distinct rendered rule through the pf grammar checker.
func TestExamplesRender(t *testing.T) {
	for name, data := range exampleConfigs(t) {
		t.Run(name, func(t *testing.T) {
			got, rules, cfg := renderExample(t, data)
			path := filepath.Join("examples", "golden", strings.TrimSuffix(name, ".yaml")+".txt")
			golden.Check(t, path, []byte(got)) // go test ./deploy -update
			t.Run("pfgrammar", func(t *testing.T) {
				checkRules(t, slices.Sorted(maps.Keys(rules)), cfg.PF.Syntax)
			})
		})
	}
}

// checkRules runs rules through shared/tools/pfgrammar.py in the dialect.
func checkRules(t *testing.T, rules []string, dialect string) {
	t.Helper()
	python, script := pfgrammar(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(python, script, "--dialect", dialect, "-")
	cmd.Stdin = strings.NewReader(strings.Join(rules, "\n") + "\n")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("pfgrammar (%s) rejects rendered rules: %v\n%s%s", dialect, err, stdout.String(), stderr.String())
	}
}

// TestExamplePFConf checks deploy/examples/pf.conf: every filter rule passes
// the pf grammar checker, it declares every anchor that carp-pair.yaml
// renders, and the NAT anchors come before the first filter rule, as in
// the ifstated recipe.
func TestExamplePFConf(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join("examples", "pf.conf"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("examples", "carp-pair.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data, "fw1")
	if err != nil {
		t.Fatalf("carp-pair.yaml: %v", err)
	}
	rs, err := pfapply.Render(cfg, verdictFor(cfg, nil))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(conf), "\n")
	anchorAt := map[string]int{}
	firstFilter := -1
	anchorRE := regexp.MustCompile(`^anchor "([^"]+)"$`)
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if m := anchorRE.FindStringSubmatch(l); m != nil {
			anchorAt[m[1]] = i
		}
		if firstFilter < 0 && (strings.HasPrefix(l, "block") || strings.HasPrefix(l, "pass")) {
			firstFilter = i
		}
	}
	for _, a := range rs.Anchors {
		at, ok := anchorAt[a.Name]
		switch {
		case !ok:
			t.Errorf("pf.conf lacks anchor %q, which gwstated loads for carp-pair.yaml", a.Name)
		case a.Kind == pfapply.KindNAT && at > firstFilter:
			t.Errorf("pf.conf: NAT anchor %q (line %d) comes after the first filter rule (line %d)", a.Name, at+1, firstFilter+1)
		}
	}
	for _, l := range cfg.Links {
		for _, want := range []string{`"` + l.Interface + `"`, `"` + l.Gateway.String() + `"`} {
			if !strings.Contains(string(conf), want) {
				t.Errorf("pf.conf does not define %s of link %s (carp-pair.yaml)", want, l.Name)
			}
		}
	}

	python, script := pfgrammar(t)
	out, err := exec.Command(python, script, "--dialect", cfg.PF.Syntax, filepath.Join("examples", "pf.conf")).CombinedOutput()
	if err != nil {
		t.Errorf("pfgrammar rejects examples/pf.conf: %v\n%s", err, out)
	}
	// Only set and anchor statements may be outside the checker's scope.
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "unsupported:") && !strings.Contains(l, "'set' statements") && !strings.Contains(l, "anchor rules") {
			t.Errorf("pfgrammar could not check: %s", l)
		}
	}
}
