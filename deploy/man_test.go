package deploy

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"gwstated/config"
)

var manPages = []string{"gwstated.8", "gwctl.8", "gwstated.yaml.5"}

func readMan(t *testing.T, page string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("man", page))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestManLint fails on anything mandoc -T lint reports at level warning or
// above, the same check OpenBSD runs on its own pages.
func TestManLint(t *testing.T) {
	mandoc := needTool(t, "mandoc", "mandoc")
	for _, page := range manPages {
		t.Run(page, func(t *testing.T) {
			out, err := exec.Command(mandoc, "-T", "lint", "-W", "warning", filepath.Join("man", page)).CombinedOutput()
			if err != nil || len(out) > 0 {
				t.Errorf("mandoc -T lint -W warning man/%s: %v\n%s", page, err, out)
			}
		})
	}
}

// configKeys lists every key of the config file as gwstated.yaml(5) writes
// it: dotted mapstructure names, "[]" after a list of mappings, ".NAME."
// for a mapping keyed by a name the admin picks (nodes). Leaves hold values;
// sections hold other keys.
func configKeys(t reflect.Type, prefix string) (leaves, sections []string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		var l, s []string
		switch {
		case ft.Kind() == reflect.Struct && ft.PkgPath() == t.PkgPath():
			l, s = configKeys(ft, key+".")
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem().PkgPath() == t.PkgPath():
			l, s = configKeys(ft.Elem(), key+"[].")
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			l, s = configKeys(ft.Elem(), key+".NAME.")
		default:
			leaves = append(leaves, key)
			continue
		}
		sections = append(append(sections, key), s...)
		leaves = append(leaves, l...)
	}
	return leaves, sections
}

// TestManConfigKeys checks that gwstated.yaml(5) has an entry
// (".It Ic <key>") for every key config.Config decodes a value into, and
// none for a key it does not have: a renamed or added key fails here until
// the page follows.
func TestManConfigKeys(t *testing.T) {
	page := readMan(t, "gwstated.yaml.5")
	leaves, sections := configKeys(reflect.TypeFor[config.Config](), "")
	items := manItems(page)
	for _, k := range leaves {
		if _, ok := items[k]; !ok {
			t.Errorf("gwstated.yaml.5 does not document key %s (want a line \".It Ic %s ...\")", k, k)
		}
	}
	for k := range items {
		if !slices.Contains(leaves, k) && !slices.Contains(sections, k) {
			t.Errorf("gwstated.yaml.5 documents %s, which config.Config does not have", k)
		}
	}
}

// manItems splits a page into its ".It Ic <key>" entries: key -> the
// entry's source up to the next .It or list end.
func manItems(page string) map[string]string {
	items := map[string]string{}
	key := ""
	var body strings.Builder
	flush := func() {
		if key != "" {
			items[key] = body.String()
		}
		key = ""
		body.Reset()
	}
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, ".It ") || strings.HasPrefix(line, ".El") {
			flush()
			if f := strings.Fields(line); len(f) >= 3 && f[1] == "Ic" {
				key = f[2]
			}
			continue
		}
		body.WriteString(line + "\n")
	}
	flush()
	return items
}

// TestManConfigDefaults checks that each default gwstated.yaml(5) states
// (a line "Default:" or "Default: the profile's," then ".Ql value" in the
// key's entry) is the value the
// config package fills in, as config.Marshal (gwctl check --print-defaults)
// writes it: config.Default for the file, ApplyDefaults for a link and an
// embedded etcd member.
func TestManConfigDefaults(t *testing.T) {
	def := config.Default()
	def.Links = []config.Link{{Name: "x", Interface: "em1", Gateway: netip.MustParseAddr("192.0.2.1")}}
	def.Cluster.Etcd.Embed = &config.Embed{}
	def.ApplyDefaults()
	marshalled, err := config.Marshal(&def)
	if err != nil {
		t.Fatal(err)
	}
	want := flattenYAML(t, string(marshalled))
	defRE := regexp.MustCompile(`(?m)^Default:(?: the profile's,)?\n\.Ql (\S+)`)
	checked := 0
	for key, body := range manItems(readMan(t, "gwstated.yaml.5")) {
		m := defRE.FindStringSubmatch(body)
		w, hasDefault := want[key]
		switch {
		case m == nil && hasDefault && !noDefault[w]:
			t.Errorf("gwstated.yaml.5: %s has no \"Default:\" line; the config package fills in %q", key, w)
		case m == nil:
		case !hasDefault && goZero[m[1]]:
			// An optional key left out by Marshal: its default is Go's zero.
		case !hasDefault:
			t.Errorf("gwstated.yaml.5 gives %s a default (%s); the config package fills in none", key, m[1])
		default:
			checked++
			if got := strings.Trim(m[1], `"`); got != w {
				t.Errorf("gwstated.yaml.5 says %s defaults to %q; the config package fills in %q", key, got, w)
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d defaults checked in gwstated.yaml.5; the page or config.Marshal changed form", checked)
	}
}

// goZero holds the zero values a page may state for a key that
// config.Marshal leaves out when it is zero (witness: false).
var goZero = map[string]bool{"false": true, "0": true, "0s": true}

// noDefault holds the values config.Marshal writes for a key that has no
// default: the page need not state them.
var noDefault = map[string]bool{"": true, "[]": true, "{}": true, "invalid Prefix": true, "invalid IP": true, "x": true, "em1": true, "192.0.2.1": true}

// TestManConfigExamples runs every config in the EXAMPLES of
// gwstated.yaml(5) through the validator, for each node it names.
func TestManConfigExamples(t *testing.T) {
	page := readMan(t, "gwstated.yaml.5")
	blocks := regexp.MustCompile(`(?s)\n\.Bd -literal[^\n]*\n(.*?)\n\.Ed`).FindAllStringSubmatch(page, -1)
	n := 0
	for _, b := range blocks {
		if !strings.Contains(b[1], "links:") {
			continue
		}
		n++
		data := []byte(strings.ReplaceAll(b[1], `\&`, ""))
		for _, node := range nodesOf(t, data) {
			if _, err := config.Parse(data, node); err != nil {
				t.Errorf("gwstated.yaml.5 example %d, node %q:\n%v\n%s", n, node, err, data)
			}
		}
	}
	if n < 2 {
		t.Errorf("found %d config examples in gwstated.yaml.5, want 2", n)
	}
}

// flattenYAML turns the YAML config.Marshal writes into dotted key ->
// scalar text, with "[]" for the items of a list of mappings (the first
// item's values win); lists of scalars and empty mappings are left out.
func flattenYAML(t *testing.T, s string) map[string]string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("config.Marshal output: %v", err)
	}
	out := map[string]string{}
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.DocumentNode:
			walk(n.Content[0], key)
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if key != "" {
					k = key + "." + k
				}
				walk(n.Content[i+1], k)
			}
		case yaml.SequenceNode:
			if len(n.Content) > 0 && n.Content[0].Kind == yaml.MappingNode {
				walk(n.Content[0], key+"[]")
			}
		case yaml.ScalarNode:
			out[key] = n.Value
		}
	}
	walk(&doc, "")
	return out
}

// goFlags returns the flag names a Go source file defines on a FlagSet
// (fs.String("config", ...), fs.StringVar(&x, "config", ...), flag.Bool(...)).
func goFlags(src string) []string {
	re := regexp.MustCompile(`\b[a-z]\w*\.(?:Bool|String|Int|Int64|Uint|Uint64|Float64|Duration|Func|BoolFunc|TextVar|Var)(?:Var)?\((?:[^",()]*,\s*)?"([a-z][a-z0-9-]*)"`)
	var names []string
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		names = append(names, m[1])
	}
	return names
}

// TestManGwctl checks gwctl(8) against cmd/ctl: every registered subcommand
// has its own entry, every page entry is a real subcommand, and every flag
// any subcommand defines is documented.
func TestManGwctl(t *testing.T) {
	page := readMan(t, "gwctl.8")
	files, err := filepath.Glob(filepath.Join("..", "cmd", "ctl", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cmd/ctl sources: %v", err)
	}
	nameRE := regexp.MustCompile(`register\(&command\{\s*name:\s*"([a-z]+)"`)
	var subcommands, flags []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range nameRE.FindAllStringSubmatch(string(b), -1) {
			subcommands = append(subcommands, m[1])
		}
		flags = append(flags, goFlags(string(b))...)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\.It Xo\n\.Nm(?: gwctl)?\n\.Cm ([a-z]+)|^\.It Nm(?: gwctl)? Cm ([a-z]+)`).FindAllStringSubmatch(page, -1) {
		documented[m[1]+m[2]] = true
	}
	for _, c := range subcommands {
		if !documented[c] {
			t.Errorf("gwctl.8 has no entry for subcommand %q (want \".It Nm Cm %s ...\")", c, c)
		}
	}
	for c := range documented {
		if c != "help" && !slices.Contains(subcommands, c) { // help is built into main.go
			t.Errorf("gwctl.8 documents subcommand %q, which cmd/ctl does not register", c)
		}
	}
	checkFlagsDocumented(t, "gwctl.8", page, flags)
}

// TestManGwstated checks gwstated(8) against cmd/agent: every flag the
// agent defines is documented. It also checks the page documents the flags
// of the command-line contract, so the page cannot lose one.
func TestManGwstated(t *testing.T) {
	page := readMan(t, "gwstated.8")
	contract := []string{"config", "node", "witness", "dry-run", "state-dir", "log-format", "log-level", "version", "help"}
	checkFlagsDocumented(t, "gwstated.8", page, contract)
	files, _ := filepath.Glob(filepath.Join("..", "cmd", "agent", "*.go"))
	var flags []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		flags = append(flags, goFlags(string(b))...)
	}
	if len(files) == 0 {
		t.Log("cmd/agent has no sources yet: only the contract's flags are checked")
	}
	checkFlagsDocumented(t, "gwstated.8", page, flags)
}

func checkFlagsDocumented(t *testing.T, name, page string, flags []string) {
	t.Helper()
	for _, f := range flags {
		if !regexp.MustCompile(`(?m)\bFl -?-` + regexp.QuoteMeta(f) + `\b`).MatchString(page) {
			t.Errorf("%s does not document flag --%s (want \"Fl -%s\")", name, f, f)
		}
	}
}

// TestRCScript checks the rc.d script: it parses, is executable, and sets
// what rc.subr(8) needs for a foreground daemon reloaded with SIGHUP.
func TestRCScript(t *testing.T) {
	path := filepath.Join("openbsd", "rc.d", "gwstated")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s is not executable (mode %v)", path, fi.Mode())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"#!/bin/ksh\n",
		`daemon="/usr/local/sbin/gwstated"`,
		`daemon_flags="--config /etc/gwstated.yaml"`,
		". /etc/rc.d/rc.subr\n",
		"rc_bg=YES\n",
		"rc_reload_signal=HUP\n",
		"rc_configtest()",
		"rc_cmd $1\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
	if i, j := strings.Index(s, "daemon="), strings.Index(s, ". /etc/rc.d/rc.subr"); i > j {
		t.Errorf("%s: daemon= must be set before rc.subr is sourced", path)
	}
	sh := needTool(t, "sh", "dash")
	if out, err := exec.Command(sh, "-n", path).CombinedOutput(); err != nil {
		t.Errorf("sh -n %s: %v\n%s", path, err, out)
	}
}
