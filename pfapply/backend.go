package pfapply

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Backend is where rules go: pf through pfctl(8) (Pfctl), or files in a
// directory for the lab, tests and dry runs (Dir). Apply drives it; a
// backend does one thing per call and keeps no plan of its own.
type Backend interface {
	// Validate checks every anchor without changing anything, and reports
	// every anchor that fails, not only the first.
	Validate(ctx context.Context, anchors []Anchor) error
	// Load replaces the rules of one anchor with a.Rules in one step
	// (empty Rules empties the anchor). It never flushes first.
	Load(ctx context.Context, a Anchor) error
	// ReadAnchor returns the rules the anchor holds now, as the backend
	// prints them (see SameRules for comparing them to what was loaded).
	ReadAnchor(ctx context.Context, name string) (string, error)
	// SetDefaultRoute points the default route at gw.
	SetDefaultRoute(ctx context.Context, gw netip.Addr) error
}

// StateKiller is a Backend that can kill pf states. Apply kills the states
// of a failed link only through a backend that implements it.
type StateKiller interface {
	// KillStates kills the states created by rules carrying label.
	KillStates(ctx context.Context, label string) error
}

// Recorder is a Backend that records which verdict it holds (the dir
// backend's applied.json). Apply calls it last, after everything else of
// a ruleset is in place.
type Recorder interface {
	Record(ctx context.Context, seq uint64, hash string) error
}

// Sentinel errors of this package's side-effect half; test with errors.Is.
var (
	// ErrAnchorName: an anchor name is not [a-z0-9][a-z0-9_-]* of at most
	// 63 bytes (it would reach a command line or a file name).
	ErrAnchorName = errors.New("invalid anchor name")
	// ErrHostileRules: rule text that Render never writes (NUL or other
	// control characters, invalid UTF-8, include/load directives, too long).
	ErrHostileRules = errors.New("rules refused")
	// ErrValidate: an anchor failed validation; nothing was loaded.
	ErrValidate = errors.New("validation failed, nothing loaded")
	// ErrLoad: loading an anchor failed; anchors loaded before it stay.
	ErrLoad = errors.New("anchor load failed")
	// ErrRoute: setting the default route failed.
	ErrRoute = errors.New("default route not set")
	// ErrKillStates: killing the states of a failed link failed.
	ErrKillStates = errors.New("state kill failed")
)

// maxRulesLen bounds one anchor's text; Render's largest anchors are a few
// hundred bytes per link.
const maxRulesLen = 1 << 20

// CheckAnchorName returns an error wrapping ErrAnchorName unless name is
// [a-z0-9][a-z0-9_-]* and at most 63 bytes (pf's anchor name field is 64
// bytes with the NUL). The check keeps a name from becoming a path ('/',
// '..'), an option ('-') or pf's reserved '_' prefix.
func CheckAnchorName(name string) error {
	if name == "" || len(name) > maxAnchorName {
		return fmt.Errorf("%w: %q must be 1 to %d bytes", ErrAnchorName, name, maxAnchorName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return fmt.Errorf("%w: %q: byte %d (%q) is not one of [a-z0-9_-] (and the name must start with a letter or digit)", ErrAnchorName, name, i, c)
		}
	}
	return nil
}

// checkAnchor checks an anchor's name (CheckAnchorName) and rules
// (checkRules) before they reach a file or a command line.
func checkAnchor(a Anchor) error {
	if err := CheckAnchorName(a.Name); err != nil {
		return err
	}
	return checkRules(a.Name, a.Rules)
}

// checkRules refuses rule text that could do more than fill one anchor or
// that could not have come from Render: NUL and other control characters
// (tab and newline are allowed), invalid UTF-8, pf.conf's include and
// load-anchor directives (which read other files), and text over 1 MiB.
func checkRules(anchor, rules string) error {
	if len(rules) > maxRulesLen {
		return fmt.Errorf("%w: anchor %q: %d bytes is more than %d", ErrHostileRules, anchor, len(rules), maxRulesLen)
	}
	if !utf8.ValidString(rules) {
		return fmt.Errorf("%w: anchor %q: text is not valid UTF-8", ErrHostileRules, anchor)
	}
	line := 1
	for i, r := range rules {
		switch {
		case r == '\n':
			line++
		case r == '\t':
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("%w: anchor %q line %d: control character %U at byte %d", ErrHostileRules, anchor, line, r, i)
		}
	}
	for n, l := range strings.Split(rules, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && (f[0] == "include" || f[0] == "load") {
			return fmt.Errorf("%w: anchor %q line %d: %q directives read other files", ErrHostileRules, anchor, n+1, f[0])
		}
	}
	return nil
}
