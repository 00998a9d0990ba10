package pfrule

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	natRule   = "match out on fxp0 from 192.168.0.0/24 nat-to (fxp0) label \"gwstated:isp1\"\n"
	passRule  = "pass out on fxp1 from (fxp0) route-to 198.51.100.100 label \"gwstated:isp1\"\n"
	lbRule    = "pass in on dc0 from 192.168.0.0/24 route-to { 198.51.100.100 203.0.113.200 } round-robin label \"gwstated:loadbalance\"\n"
	lbLegacy  = "pass in on dc0 from 192.168.0.0/24 route-to { (fxp0 198.51.100.100), (fxp1 203.0.113.200) } round-robin label \"gwstated:loadbalance\"\n"
	appsRule  = "pass in on dc0 proto tcp from 192.168.0.0/24 to port { 25 587 } route-to 198.51.100.100 label \"gwstated:mail\"\n"
	udpRule   = "pass in on dc0 proto udp from 192.168.0.0/24 to port 5060 route-to 198.51.100.100 label \"gwstated:voip\"\n"
	passLegcy = "pass out on fxp1 from (fxp0) route-to (fxp0 198.51.100.100) label \"gwstated:isp1\"\n"
)

// TestPrint: what pfctl -sr prints for each rule form gwstated writes, from
// print_rule of pfctl_parser.c 1.352 and the defaults of parse.y 1.719.
func TestPrint(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Dialect
		in   string
		want string
	}{
		{"nat to interface: round-robin of apply_redirspec, label before nat-to", OpenBSD, natRule,
			`match out on fxp0 inet from 192.168.0.0/24 to any label "gwstated:isp1" nat-to (fxp0) round-robin`},
		{"nat to an address: no pool type", OpenBSD, "match out on fxp0 from 192.168.0.0/24 nat-to 198.51.100.10 label \"gwstated:isp1\"\n",
			`match out on fxp0 inet from 192.168.0.0/24 to any label "gwstated:isp1" nat-to 198.51.100.10`},
		{"pass: inet from the route-to address, flags S/SA, keep state not printed", OpenBSD, passRule,
			`pass out on fxp1 inet from (fxp0) to any flags S/SA label "gwstated:isp1" route-to 198.51.100.100`},
		{"pool of two: automatic table", OpenBSD, lbRule,
			`pass in on dc0 inet from 192.168.0.0/24 to any flags S/SA label "gwstated:loadbalance" route-to <__automatic_9d2f8a1c_0> round-robin`},
		{"port list: one rule per port, port = N", OpenBSD, appsRule,
			"pass in on dc0 inet proto tcp from 192.168.0.0/24 to any port = 25 flags S/SA label \"gwstated:mail\" route-to 198.51.100.100\n" +
				`pass in on dc0 inet proto tcp from 192.168.0.0/24 to any port = 587 flags S/SA label "gwstated:mail" route-to 198.51.100.100`},
		{"udp: no flags", OpenBSD, udpRule,
			`pass in on dc0 inet proto udp from 192.168.0.0/24 to any port = 5060 label "gwstated:voip" route-to 198.51.100.100`},
		{"legacy single route host: addr@if", Legacy, passLegcy,
			`pass out on fxp1 inet from (fxp0) to any flags S/SA label "gwstated:isp1" route-to 198.51.100.100@fxp0`},
		{"legacy pool: table", Legacy, lbLegacy,
			`pass in on dc0 inet from 192.168.0.0/24 to any flags S/SA label "gwstated:loadbalance" route-to <__automatic_9d2f8a1c_0> round-robin`},
		{"quick, negation, inet6, all", OpenBSD, "pass in quick on ! dc0 inet6 from ! 2001:db8::/64 to any no state\nblock all\n",
			"pass in quick on ! dc0 inet6 from ! 2001:db8::/64 to any no state\nblock drop all"},
		{"explicit flags any", OpenBSD, "pass in on dc0 from 192.168.0.0/24 flags any\n",
			`pass in on dc0 inet from 192.168.0.0/24 to any flags any`},
	} {
		rs, err := Compile(tc.in, Options{Dialect: tc.d, TableID: 0x9d2f8a1c})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := strings.TrimSuffix(PrintRules(rs), "\n"); got != tc.want {
			t.Errorf("%s:\n got  %s\n want %s", tc.name, got, tc.want)
		}
	}
}

func TestAutomaticTables(t *testing.T) {
	rs, err := Compile(lbLegacy+lbRule, Options{Dialect: Legacy, TableID: 0xabc})
	if err == nil {
		t.Fatalf("legacy dialect took the OpenBSD pool form: %v", rs.Rules)
	}
	rs, err = Compile(lbLegacy+lbLegacy, Options{Dialect: Legacy, TableID: 0xabc})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Tables) != 2 || rs.Tables[0].Name != "__automatic_abc_0" || rs.Tables[1].Name != "__automatic_abc_1" {
		t.Fatalf("tables %+v", rs.Tables)
	}
	if got, want := PrintTableEntries(&rs.Tables[0]), "   198.51.100.100@fxp0\n   203.0.113.200@fxp1\n"; got != want {
		t.Errorf("-T show: %q, want %q", got, want)
	}
	if got, want := PrintTableDef(&rs.Tables[0]), "table <__automatic_abc_0> const { 198.51.100.100@fxp0 203.0.113.200@fxp1 }"; got != want {
		t.Errorf("tabledef: %q, want %q", got, want)
	}
	tb, err := ParseTableShow("__automatic_abc_0", PrintTableEntries(&rs.Tables[0]))
	if err != nil || len(tb.Entries) != 2 || tb.Entries[1].If != "fxp1" {
		t.Errorf("ParseTableShow: %+v, %v", tb, err)
	}
}

// TestRefused: what parse.y refuses in the subset, with its messages.
func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		d    Dialect
		in   string
		want string
	}{
		{OpenBSD, "pass in on dc0 from 192.168.0.0/24 route-to (fxp0 198.51.100.100)\n", "syntax error"},
		{OpenBSD, "pass in on dc0 from 192.168.0.0/24 route-to (fxp0)\n", "route spec requires :peer with dynamic interface addresses"},
		{OpenBSD, "pass in on dc0 from 2001:db8::/64 route-to 198.51.100.100\n", "af mismatch in routing spec"},
		{OpenBSD, "match out on fxp0 from 192.168.0.0/24 route-to 198.51.100.100\n", "route-to, reply-to and dup-to are not supported on match rules"},
		{OpenBSD, "pass from 192.168.0.0/24 route-to 198.51.100.100\n", "direction must be explicit with rules that specify routing"},
		{OpenBSD, "match from 192.168.0.0/24 nat-to (fxp0)\n", "nat-to and rdr-to require a direction"},
		{OpenBSD, "pass in on dc0 no state route-to 198.51.100.100\n", "route-to, reply-to and dup-to require keep state"},
		{OpenBSD, "pass in on dc0 from 192.168.0.0/24 to port 443\n", "port only applies to tcp/udp"},
		{OpenBSD, "pass in on dc0 proto udp from any flags S/SA\n", "flags only apply to tcp"},
		{OpenBSD, "pass in on dc0 label \"" + strings.Repeat("a", 64) + "\"\n", "rule label too long (max 63 chars)"},
		{OpenBSD, "pass in on dc0 label \"a\" label \"b\"\n", "label cannot be redefined"},
		{OpenBSD, "pass in on dc0 from 192.168.0.0/24 route-to { 198.51.100.100 203.0.113.200 } bitmask\n", "pool type is not valid for multiple translation or routing addresses"},
		{OpenBSD, "pass in on fxp0; reboot\n", "syntax error"},
		{OpenBSD, "pass in on $ext\n", "macro 'ext' not defined"},
		{OpenBSD, "pass in on dc0 from 192.168.0.0/24 route-to 198.51.100.100@fxp0\n", "@if not permitted for routing"},
		{OpenBSD, "anchor foo\n", "outside the subset"},
		{OpenBSD, "pass in on dc0 label \"unterminated", "reached end of file while parsing quoted string"},
		{Legacy, "pass in on dc0 from 192.168.0.0/24 route-to 198.51.100.100\n", "routeto: unknown interface 198.51.100.100"},
		{Legacy, "pass in on dc0 from 192.168.0.0/24 route-to (em9 198.51.100.100)\n", "routeto: unknown interface em9"},
	} {
		_, err := Compile(tc.in, Options{Dialect: tc.d, File: "/x/a.pending", Interfaces: []string{"dc0", "fxp0", "fxp1"}})
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "/x/a.pending:1: ") {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestEqual: the rules as printed back (and the automatic table as listed)
// are the rules loaded; a changed pool, quick, negation, label, order or
// count is not.
func TestEqual(t *testing.T) {
	printed := func(d Dialect, in string) string {
		rs, err := Compile(in, Options{Dialect: d, TableID: 0x1234})
		if err != nil {
			t.Fatal(err)
		}
		out := PrintRules(rs)
		for i := range rs.Tables {
			out += PrintTableDef(&rs.Tables[i]) + "\n"
		}
		return out
	}
	for _, tc := range []struct {
		name string
		d    Dialect
		want string
		got  string
		same bool
	}{
		{"nat", OpenBSD, natRule, printed(OpenBSD, natRule), true},
		{"pool", OpenBSD, lbRule, printed(OpenBSD, lbRule), true},
		{"legacy pool", Legacy, lbLegacy, printed(Legacy, lbLegacy), true},
		{"legacy single", Legacy, passLegcy, printed(Legacy, passLegcy), true},
		{"port list", OpenBSD, appsRule, printed(OpenBSD, appsRule), true},
		{"empty", OpenBSD, "# nothing\n", "", true},
		{"pool changed by hand", OpenBSD, lbRule, printed(OpenBSD, strings.Replace(lbRule, "203.0.113.200", "203.0.113.201", 1)), false},
		{"pool shrunk", OpenBSD, lbRule, printed(OpenBSD, strings.Replace(lbRule, "{ 198.51.100.100 203.0.113.200 }", "198.51.100.100", 1)), false},
		{"table not read", OpenBSD, lbRule, PrintRules(mustCompile(t, lbRule)), false},
		{"quick added", OpenBSD, natRule, printed(OpenBSD, strings.Replace(natRule, "match out", "match out quick", 1)), false},
		{"negation", OpenBSD, natRule, printed(OpenBSD, strings.Replace(natRule, "from 192", "from ! 192", 1)), false},
		{"label", OpenBSD, natRule, printed(OpenBSD, strings.Replace(natRule, "isp1", "isp2", 1)), false},
		{"no state", OpenBSD, "pass in on dc0 from 192.168.0.0/24\n", printed(OpenBSD, "pass in on dc0 from 192.168.0.0/24 no state\n"), false},
		{"flushed", OpenBSD, natRule, "", false},
		{"one rule more", OpenBSD, natRule, printed(OpenBSD, natRule+natRule), false},
		{"legacy interface", Legacy, passLegcy, printed(Legacy, strings.Replace(passLegcy, "(fxp0 198", "(fxp1 198", 1)), false},
	} {
		same, diff, err := Equal(tc.want, tc.got, tc.d)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if same != tc.same {
			t.Errorf("%s: Equal = %v (%s), want %v\n got text: %s", tc.name, same, diff, tc.same, tc.got)
		}
		if !same && diff == "" {
			t.Errorf("%s: no diff given", tc.name)
		}
	}
}

func mustCompile(t *testing.T, s string) *Ruleset {
	t.Helper()
	rs, err := Compile(s, Options{Dialect: OpenBSD})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestGoldenAnchors: every anchor of every golden file of pfapply loads in
// its dialect, and printed back as OpenBSD prints it compares equal.
func TestGoldenAnchors(t *testing.T) {
	files, err := filepath.Glob("../testdata/golden/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := OpenBSD
		if strings.HasSuffix(f, "-legacy.conf") {
			d = Legacy
		}
		for name, text := range splitGolden(string(b)) {
			rs, err := Compile(text, Options{Dialect: d, TableID: 0x77})
			if err != nil {
				t.Errorf("%s anchor %s: %v", f, name, err)
				continue
			}
			out := PrintRules(rs)
			for i := range rs.Tables {
				out += PrintTableDef(&rs.Tables[i]) + "\n"
			}
			if same, diff, err := Equal(text, out, d); !same || err != nil {
				t.Errorf("%s anchor %s: printed back differs: %s %v", f, name, diff, err)
			}
			n++
		}
	}
	t.Logf("%d anchors of %d golden files", n, len(files))
}

// splitGolden cuts a golden file at its "# anchor NAME" lines.
func splitGolden(s string) map[string]string {
	out := map[string]string{}
	name := ""
	for _, l := range strings.Split(s, "\n") {
		if a, ok := strings.CutPrefix(l, "# anchor "); ok {
			name = a
			out[name] = ""
			continue
		}
		if name != "" && !strings.HasPrefix(l, "# default-route") && !strings.HasPrefix(l, "# hash") {
			out[name] += l + "\n"
		}
	}
	return out
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{natRule, passRule, lbRule, lbLegacy, appsRule, udpRule} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, d := range []Dialect{OpenBSD, Legacy, Printed} {
			rs, err := Compile(s, Options{Dialect: d})
			if err != nil {
				continue
			}
			// What loads prints as something that loads again, the same.
			out := PrintRules(rs)
			for i := range rs.Tables {
				out += PrintTableDef(&rs.Tables[i]) + "\n"
			}
			rs2, err := Compile(out, Options{Dialect: Printed})
			if err != nil {
				t.Fatalf("printed form of %q does not load: %v\n%s", s, err, out)
			}
			if a, b := strings.Join(Canonical(rs), "\n"), strings.Join(Canonical(rs2), "\n"); a != b {
				t.Fatalf("round trip of %q:\n%s\n%s", s, a, b)
			}
		}
	})
}
