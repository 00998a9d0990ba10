package pfapply

// Golden files for Render. Every rule form was compared with OpenBSD's
// pf.conf(5), "$OpenBSD: pf.conf.5,v 1.609 2026/01/18 16:38:01 schwarze Exp $"
// (GRAMMAR: pf-rule = action ["in"|"out"] ["on" ifspec] [protospec] [hosts]
// [filteropts]; filteropt "label" string, "nat-to" redirhost, and route =
// "route-to" ( redirhost | "{" redirhost-list "}" ) with pooltype
// "round-robin"), and for pf.syntax: legacy with the pre-6.9 route-to form
// "(interface address)" of the PF FAQ multi-WAN example that the ifstated
// recipe uses. On top of that, every anchor of every golden case is run
// through the independent checker ../shared/tools/pfgrammar.py, when present, in its
// dialect.
//
// Regenerate with: go test ./pfapply -run Golden -update
// and read the diff before committing it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gwstated/config"
	"gwstated/internal/testkit"
	"gwstated/internal/testkit/golden"
	"gwstated/linkstate"
)

type goldenCase struct {
	file       string // testdata/golden/<file>.conf
	about      string
	yaml       string
	syntax     string
	up, active []string
}

func goldenCases() []goldenCase {
	both := []string{"isp1", "isp2"}
	var cases []goldenCase
	// The ifstated recipe's four states; alldown under each all_down mode
	// (all: fail open, every link; none: the recipe's empty anchors; keep:
	// the links of the last verdict with an up link, here noisp1's).
	for _, syntax := range []string{"openbsd", "legacy"} {
		for _, s := range []struct {
			name, about string
			up, active  []string
		}{
			{"allworking", "both links up", both, both},
			{"noisp1", "isp1 down", []string{"isp2"}, []string{"isp2"}},
			{"noisp2", "isp2 down", []string{"isp1"}, []string{"isp1"}},
			{"alldown-all", "both down, all_down: all (fail open)", nil, both},
			{"alldown-none", "both down, all_down: none (the recipe's alldown)", nil, nil},
			{"alldown-keep", "both down, all_down: keep (last verdict was noisp1)", nil, []string{"isp2"}},
		} {
			cases = append(cases, goldenCase{
				file: "recipe-" + s.name + "-" + syntax, about: "ifstated recipe, " + s.about,
				yaml: yamlPFFAQ, syntax: syntax, up: s.up, active: s.active,
			})
		}
	}
	all3 := []string{"isp1", "isp2", "lte"}
	cases = append(cases,
		goldenCase{"tiers-tier1-up-openbsd", "three links in two tiers, all up: tier 1 balances, lte ready", yamlTiers, "openbsd", all3, both},
		goldenCase{"tiers-tier1-partial-openbsd", "three links, isp1 down: tier 1 still carries", yamlTiers, "openbsd", []string{"isp2", "lte"}, []string{"isp2"}},
		goldenCase{"tiers-tier1-down-openbsd", "three links, tier 1 down: tier 2 (lte) takes over", yamlTiers, "openbsd", []string{"lte"}, []string{"lte"}},
		goldenCase{"tiers-tier1-down-legacy", "three links, tier 1 down: tier 2 (lte) takes over", yamlTiers, "legacy", []string{"lte"}, []string{"lte"}},
		goldenCase{"carp-allworking-openbsd", "CARP pair, nat_to the CARP addresses, both up", yamlCARP, "openbsd", both, both},
		goldenCase{"carp-noisp1-openbsd", "CARP pair, isp1 down", yamlCARP, "openbsd", []string{"isp2"}, []string{"isp2"}},
		goldenCase{"carp-allworking-legacy", "CARP pair, nat_to the CARP addresses, both up", yamlCARP, "legacy", both, both},
		goldenCase{"sticky-preferred-up-openbsd", "https prefers isp2 (up); voip has no preference", yamlStickyPref, "openbsd", both, both},
		goldenCase{"sticky-preferred-down-openbsd", "https prefers isp2 (down): pinned to the first active link", yamlStickyPref, "openbsd", []string{"isp1"}, []string{"isp1"}},
		goldenCase{"ipv6-allworking-openbsd", "IPv6 LAN and gateways, isp2 with nat_to", yamlIPv6, "openbsd", both, both},
		goldenCase{"ipv6-allworking-legacy", "IPv6 LAN and gateways, isp2 with nat_to", yamlIPv6, "legacy", both, both},
	)
	return cases
}

// goldenText is the golden file form of a ruleset: every anchor under a
// "# anchor NAME" header, then the default route and the hash.
func goldenText(about string, rs Ruleset) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# gwstated golden: %s\n", about)
	for _, a := range rs.Anchors {
		fmt.Fprintf(&b, "# anchor %s\n%s", a.Name, a.Rules)
	}
	route := "none"
	if rs.DefaultRoute.IsValid() {
		route = rs.DefaultRoute.String()
	}
	fmt.Fprintf(&b, "# default-route %s\n# hash %s\n", route, rs.Hash)
	return b.Bytes()
}

func TestRenderGolden(t *testing.T) {
	var checks []grammarCheck
	tmp := t.TempDir()
	for _, c := range goldenCases() {
		cfg := withSyntax(parseConfig(t, c.yaml), c.syntax)
		rs, err := Render(cfg, verdict(cfg, c.up, c.active))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		got := goldenText(c.about, rs)
		path := filepath.Join("testdata", "golden", c.file+".conf")
		golden.Check(t, path, got)
		for _, a := range rs.Anchors {
			if a.Rules == "" {
				continue
			}
			f := filepath.Join(tmp, c.file+"."+a.Name+".conf")
			if err := os.WriteFile(f, []byte(a.Rules), 0o644); err != nil {
				t.Fatal(err)
			}
			checks = append(checks, grammarCheck{Path: f, Dialect: c.syntax, Rules: len(ruleLines(a.Rules))})
		}
	}
	for _, bad := range runPfgrammar(t, checks) {
		t.Errorf("pfgrammar rejects %s", bad)
	}
}

// TestPfgrammarCatchesBadRules makes sure the grammar check above can fail:
// rules that are wrong in a way Render could get wrong must be rejected.
func TestPfgrammarCatchesBadRules(t *testing.T) {
	tmp := t.TempDir()
	bad := []struct{ dialect, rule string }{
		{"openbsd", `pass in on dc0 from 192.168.0.0/24 route-to (fxp0 198.51.100.100) label "gwstated:loadbalance"`},
		{"legacy", `pass in on dc0 from 192.168.0.0/24 route-to 198.51.100.100 label "gwstated:loadbalance"`},
		{"openbsd", `match out on fxp0 from 192.168.0.0/24 route-to 198.51.100.100`},
		{"openbsd", `pass in on dc0 from 2001:db8::/64 route-to 198.51.100.100`},
		{"openbsd", `pass in on dc0 from 192.168.0.0/24 label "gwstated:` + strings.Repeat("a", 55) + `"`},
	}
	var checks []grammarCheck
	for i, b := range bad {
		f := filepath.Join(tmp, fmt.Sprintf("bad%d.conf", i))
		if err := os.WriteFile(f, []byte(b.rule+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		checks = append(checks, grammarCheck{Path: f, Dialect: b.dialect, Rules: 1})
	}
	if got := runPfgrammar(t, checks); len(got) != len(bad) {
		t.Errorf("pfgrammar rejected %d of %d bad rules: %q", len(got), len(bad), got)
	}
}

type grammarCheck struct {
	Path    string `json:"path"`
	Dialect string `json:"dialect"`
	Rules   int    `json:"rules"` // statements the file must hold
}

// pfgrammarScript checks every file with pfgrammar.check_anchor in one
// Python process and prints one line per problem (an invalid or unsupported
// statement, or a statement count that differs from the expected one).
const pfgrammarScript = `
import json, sys
sys.path.insert(0, sys.argv[1])
import pfgrammar
for c in json.load(sys.stdin):
    with open(c["path"]) as f:
        res = pfgrammar.check_anchor(f.read(), dialect=c["dialect"])
    if len(res) != c["rules"]:
        print("%s: checked %d statements, want %d" % (c["path"], len(res), c["rules"]))
    for line, rule, ok, reason in res:
        if not ok:
            print("%s:%d (%s): %s: %s" % (c["path"], line, c["dialect"], rule, reason))
`

// runPfgrammar returns pfgrammar's complaints about the files. It skips the
// test when python3 or the checker is missing, unless GWSTATED_REQUIRE_LAB=1.
func runPfgrammar(t *testing.T, checks []grammarCheck) []string {
	t.Helper()
	skip := func(msg string) { testkit.SkipOrRequire(t, msg) }
	py, err := exec.LookPath("python3")
	if err != nil {
		skip("pf grammar check skipped: python3 not found")
	}
	tool := findPfgrammar(t)
	if tool == "" {
		skip("pf grammar check skipped: no shared/tools/pfgrammar.py above " + mustGetwd(t))
	}
	in, err := json.Marshal(checks)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), py, "-c", pfgrammarScript, filepath.Dir(tool))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pfgrammar: %v\n%s", err, stderr.String())
	}
	var problems []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			problems = append(problems, l)
		}
	}
	return problems
}

// findPfgrammar walks up from the package directory to a directory holding
// shared/tools/pfgrammar.py.
func findPfgrammar(t *testing.T) string {
	dir := mustGetwd(t)
	for {
		p := filepath.Join(dir, "shared", "tools", "pfgrammar.py")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestRenderDecided renders verdicts made by linkstate.Decide from one
// node's observations and compares them with the hand-made verdicts of the
// golden cases, so the golden files hold what the agent would apply.
func TestRenderDecided(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	decide := func(cfg *config.Config, steps [][]string) linkstate.Verdict {
		var v linkstate.Verdict
		for i, up := range steps {
			obs := linkstate.NodeView{Alive: true, Links: map[string]linkstate.Observation{}}
			for _, l := range cfg.Links {
				st := linkstate.Down
				for _, u := range up {
					if u == l.Name {
						st = linkstate.Up
					}
				}
				obs.Links[l.Name] = linkstate.Observation{Link: l.Name, State: st, Since: now, Seq: uint64(i + 1)}
			}
			v, _ = linkstate.Decide(v, linkstate.Observations{"fw1": obs}, nil, cfg.Policy(), now.Add(time.Duration(i)*time.Minute))
		}
		return v
	}
	for _, c := range goldenCases() {
		if !strings.HasSuffix(c.file, "-openbsd") {
			continue
		}
		cfg := withSyntax(parseConfig(t, c.yaml), c.syntax)
		steps := [][]string{c.up}
		switch {
		case strings.Contains(c.file, "alldown-all"):
			cfg.AllDown = string(linkstate.AllDownAll)
		case strings.Contains(c.file, "alldown-none"):
			cfg.AllDown = string(linkstate.AllDownNone)
		case strings.Contains(c.file, "alldown-keep"):
			cfg.AllDown = string(linkstate.AllDownKeep)
			steps = [][]string{{"isp1", "isp2"}, {"isp2"}, nil}
		}
		want, err := Render(cfg, verdict(cfg, c.up, c.active))
		if err != nil {
			t.Fatal(err)
		}
		v := decide(cfg, steps)
		got, err := Render(cfg, v)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if got.Hash != want.Hash {
			t.Errorf("%s: Decide's verdict (active %v) renders differently from the golden case (active %v):\n%s",
				c.file, v.Active, c.active, testkit.LineDiff(string(goldenText(c.about, want)), string(goldenText(c.about, got))))
		}
	}
}
