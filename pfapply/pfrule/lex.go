package pfrule

import (
	"fmt"
	"strings"
)

// tokKind is the kind of a lexical token.
type tokKind int

const (
	tWord   tokKind = iota // keyword, name, address, number
	tString                // quoted string
	tPunct                 // one of ( ) { } < > ! = , / or !=, <=, >=, <>, ><
	tNL                    // end of a statement line
)

type token struct {
	kind tokKind
	text string
	line int
}

// isPunct reports the single characters yylex returns as themselves (parse.y
// 1.719, yylex: allowed_in_string excludes ( ) { } < > ! = / # ,).
func isPunct(c byte) bool {
	return strings.IndexByte("(){}<>!=,/", c) >= 0
}

// lex splits rule text into tokens the way parse.y's yylex does for the
// subset: '#' comments to end of line, backslash-newline joins lines, quoted
// strings ('...' or "..."), the two-character operators != <= >= <> ><, and
// words of everything else. A '$' starts a macro, which an anchor file from
// gwstated never uses: yylex reports "macro '%s' not defined".
func lex(src string) ([]token, error) {
	var toks []token
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			i += 2
			line++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '\n':
			toks = append(toks, token{tNL, "\n", line})
			line++
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			q := c
			j := i + 1
			var b strings.Builder
			for ; j < len(src) && src[j] != q; j++ {
				if src[j] == '\\' && j+1 < len(src) && (src[j+1] == q || src[j+1] == ' ' || src[j+1] == '\t') {
					j++
				}
				if src[j] == '\n' {
					line++
					continue
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, fmt.Errorf("%d: reached end of file while parsing quoted string", line)
			}
			toks = append(toks, token{tString, b.String(), line})
			i = j + 1
		case c == '$':
			j := i + 1
			for j < len(src) && (isAlnum(src[j]) || src[j] == '_') {
				j++
			}
			return nil, fmt.Errorf("%d: macro '%s' not defined", line, src[i+1:j])
		case isPunct(c):
			if i+1 < len(src) {
				two := src[i : i+2]
				if two == "!=" || two == "<=" || two == ">=" || two == "<>" || two == "><" {
					toks = append(toks, token{tPunct, two, line})
					i += 2
					continue
				}
			}
			toks = append(toks, token{tPunct, string(c), line})
			i++
		default:
			j := i
			for j < len(src) && !isPunct(src[j]) && !strings.ContainsRune(" \t\r\n#\"'\\", rune(src[j])) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("%d: syntax error", line)
			}
			toks = append(toks, token{tWord, src[i:j], line})
			i = j
		}
	}
	toks = append(toks, token{tNL, "\n", line})
	return toks, nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// statements groups tokens into statements: a newline ends one, except
// inside braces (parse.y's optnl in lists).
func statements(toks []token) [][]token {
	var out [][]token
	var cur []token
	depth := 0
	for _, t := range toks {
		if t.kind == tPunct {
			switch t.text {
			case "{":
				depth++
			case "}":
				depth--
			}
		}
		if t.kind == tNL {
			if depth > 0 {
				continue
			}
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, t)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
