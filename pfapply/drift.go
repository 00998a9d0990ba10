package pfapply

import (
	"net/netip"
	"strings"

	"gwstated/pfapply/pfrule"
)

// SameRules reports whether got — an anchor's rules as a backend reads them
// back: the dir backend's file, or for pfctl "pfctl -a A -sr" followed by
// the definitions of the tables those rules use, as Pfctl.ReadAnchor
// returns them — holds exactly what loading want produced.
//
// Both sides are loaded with pfapply/pfrule, a model of OpenBSD's pfctl
// (parse.y 1.719 and, for the legacy dialect, 1.584; print_rule of
// pfctl_parser.c 1.352): want as pfctl loads it (defaults, port lists
// expanded, a route-to pool of two or more gateways turned into an
// automatic table), got as pfctl prints it. The kernel rules are then
// compared in order, with every pool table replaced by its entries. So a
// pool changed by hand (the table's entries), "quick", "!", a label, the
// number or order of rules, an interface, an address, a port, a state or
// flags option all count; the comments, spelling and the random names of
// automatic tables do not. want is read in the openbsd dialect, or when it
// does not load there, in the legacy one. Empty must match empty. Text that
// does not load at all on either side is not the same.
func SameRules(want, got string) bool {
	same, _ := RulesDiff(want, got)
	return same
}

// RulesDiff is SameRules with the difference worded for a log line.
func RulesDiff(want, got string) (same bool, diff string) {
	if want == got {
		return true, ""
	}
	var firstErr error
	for _, d := range []pfrule.Dialect{pfrule.OpenBSD, pfrule.Legacy} {
		same, diff, err := pfrule.Equal(want, got, d)
		if err == nil {
			return same, diff
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return false, firstErr.Error()
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

// ruleFeatures returns a rule's label and its features (action, direction,
// interfaces, protocols, addresses, ports, route-to/nat-to keywords); Apply
// uses the label to find the states of a rule.
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
