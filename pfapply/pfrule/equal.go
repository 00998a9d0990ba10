package pfrule

import (
	"fmt"
	"slices"
	"strings"
)

// Equal reports whether got — an anchor as pfctl prints it back ("pfctl -a
// A -sr"), followed by the definitions of the tables its rules refer to
// (PrintTableDef of what "pfctl -a A -t T -T show" lists) — holds exactly
// the rules that loading want in dialect d produces: same rules, same
// order, same pools (table contents, not their random names), same quick,
// negation, label, flags and state. diff says what differs.
//
// want is compiled as pfctl would load it; got is compiled in the Printed
// dialect, where pfctl's defaults are already written out, so both sides
// end as kernel rules and are compared printed.
func Equal(want, got string, d Dialect) (same bool, diff string, err error) {
	w, err := Compile(want, Options{Dialect: d, File: "want"})
	if err != nil {
		return false, "", fmt.Errorf("rules loaded: %w", err)
	}
	g, err := Compile(got, Options{Dialect: Printed, File: "got"})
	if err != nil {
		return false, "", fmt.Errorf("rules read back: %w", err)
	}
	wc, gc := Canonical(w), Canonical(g)
	if slices.Equal(wc, gc) {
		return true, "", nil
	}
	var b strings.Builder
	for i := range max(len(wc), len(gc)) {
		var a, c string
		if i < len(wc) {
			a = wc[i]
		}
		if i < len(gc) {
			c = gc[i]
		}
		if a != c {
			fmt.Fprintf(&b, "rule %d: loaded %q, pf holds %q; ", i+1, a, c)
		}
	}
	return false, strings.TrimSuffix(b.String(), "; "), nil
}

// TableRefs returns the names of the tables the rules printed in text
// refer to in their pools and addresses, in order of first use.
func TableRefs(rs *Ruleset) []string {
	var out []string
	add := func(a Addr) {
		if a.Kind == AddrTable && !slices.Contains(out, a.Name) {
			out = append(out, a.Name)
		}
	}
	for _, r := range rs.Rules {
		add(r.Src)
		add(r.Dst)
		if r.Nat != nil {
			add(r.Nat.Host.Addr)
		}
		if r.Route != nil {
			add(r.Route.Host.Addr)
		}
	}
	return out
}

// ParseTableShow reads "pfctl -t T -T show" output back into entries.
func ParseTableShow(name, out string) (*Table, error) {
	var hosts []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.TrimSpace(l); f != "" {
			hosts = append(hosts, f)
		}
	}
	rs, err := Compile("table <"+name+"> const { "+strings.Join(hosts, " ")+" }\n", Options{Dialect: Printed, File: "pfctl -T show"})
	if err != nil {
		return nil, err
	}
	t := rs.Table(name)
	t.Automatic = strings.HasPrefix(name, AutomaticPrefix)
	return t, nil
}
