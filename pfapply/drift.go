package pfapply

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// SameRules reports whether got — an anchor's rules as a backend reads them
// back (`pfctl -a A -sr`, or the dir backend's file) — holds what want
// loaded.
//
// pfctl does not print rules as they were written: it adds "inet", "to any",
// "flags S/SA", writes "port = 443", quotes labels, separates pool members
// with commas, drops comments, and expands lists into one rule per element
// ("port { 25 587 }" becomes two rules). So after an exact comparison fails,
// SameRules compares a fingerprint that survives those rewrites: rules are
// grouped by label (gwstated labels every rule), and for each label the sets
// of actions (pass/match/block), directions, "on" interfaces, protocols,
// addresses (parsed, so spelling does not matter), ports, interface
// references like "(fxp0)", and the route-to/nat-to keywords must be equal
// (pool options such as "round-robin" are left out: pfctl prints one for
// "nat-to (fxp0)" that was never written).
// Empty must match empty.
//
// Limits: it sees neither rule order nor the number of rules a label
// carries, nor options outside that list (quick, negation, tables, state
// options). It catches what drift means here — an anchor flushed or
// reloaded by hand, with other addresses, interfaces, ports or labels —
// not every conceivable edit.
func SameRules(want, got string) bool {
	if want == got {
		return true
	}
	return slices.Equal(fingerprint(want), fingerprint(got))
}

// fingerprint is the sorted list of "label\x00feature" strings of a rule text.
func fingerprint(rules string) []string {
	set := map[string]struct{}{}
	for _, rule := range splitRules(rules) {
		label, feats := ruleFeatures(rule)
		for _, f := range feats {
			set[label+"\x00"+f] = struct{}{}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// splitRules returns the rules of a text: comments dropped, backslash
// continuations joined, blank lines skipped. pfctl -sr output with -v would
// add "[ ... ]" counter lines; those are dropped too.
func splitRules(rules string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(rules, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		cont := strings.HasSuffix(line, "\\")
		line = strings.TrimSuffix(line, "\\")
		if strings.HasPrefix(line, "[") {
			line = ""
		}
		if line != "" {
			if cur.Len() > 0 {
				cur.WriteByte(' ')
			}
			cur.WriteString(line)
		}
		if !cont && cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// ruleTokens separates the punctuation pfctl adds or drops, so "{", "}",
// "," and "=" never glue to a word; parentheses are kept to tell "(fxp0)".
var ruleTokens = strings.NewReplacer("{", " { ", "}", " } ", ",", " ", "=", " = ")

// ruleFeatures returns a rule's label and the features SameRules compares.
func ruleFeatures(rule string) (label string, feats []string) {
	toks := strings.Fields(ruleTokens.Replace(rule))
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		next := ""
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		switch {
		case i == 0:
			feats = append(feats, "action:"+t)
		case t == "in" || t == "out":
			feats = append(feats, "dir:"+t)
		case t == "on" && next != "":
			feats = append(feats, "on:"+next)
			i++
		case t == "proto" && next != "":
			feats = append(feats, "proto:"+next)
			i++
		case t == "label" && next != "":
			label = strings.Trim(next, `"`)
			i++
		case t == "route-to" || t == "nat-to" || t == "rdr-to" || t == "reply-to":
			feats = append(feats, "kw:"+t)
		case t == "port":
			for i+1 < len(toks) {
				n := toks[i+1]
				if n == "=" || n == "{" || n == "}" {
					i++
					continue
				}
				if n[0] < '0' || n[0] > '9' {
					break
				}
				feats = append(feats, "port:"+n)
				i++
			}
		default:
			if a, ok := parseAddrToken(t); ok {
				feats = append(feats, "addr:"+a)
			} else if strings.HasPrefix(t, "(") && strings.HasSuffix(t, ")") && len(t) > 2 {
				feats = append(feats, "ifref:"+t)
			}
		}
	}
	return label, feats
}

// parseAddrToken parses an address or prefix, stripped of the parentheses
// of the legacy "(fxp0 198.51.100.100)" form and of an "@interface" suffix
// (pfctl may print a route-to target as "198.51.100.100@fxp0"), into
// canonical text.
func parseAddrToken(t string) (string, bool) {
	t = strings.Trim(t, "()")
	if i := strings.IndexByte(t, '@'); i >= 0 {
		t = t[:i]
	}
	if t == "" || strings.IndexFunc(t, func(r rune) bool { return r == '.' || r == ':' }) < 0 {
		return "", false
	}
	if strings.Contains(t, "/") {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			return "", false
		}
		if p.IsSingleIP() {
			return p.Addr().String(), true
		}
		return p.String(), true
	}
	a, err := netip.ParseAddr(t)
	if err != nil {
		return "", false
	}
	return a.String(), true
}
