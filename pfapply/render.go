package pfapply

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gwstated/config"
	"gwstated/linkstate"
)

// Sentinel errors of Render; test with errors.Is.
var (
	// ErrUnknownLink: the verdict names a link the configuration lacks
	// (linkstate.ErrUnknownLink).
	ErrUnknownLink = linkstate.ErrUnknownLink
	// ErrUnrenderable: the configuration cannot be written as valid pf rules
	// (address families that do not match, names too long for pf, a value
	// that could smuggle pf syntax, an unknown pf.syntax).
	ErrUnrenderable = errors.New("configuration cannot be rendered as pf rules")
)

// LabelPrefix starts the label of every rule Render writes: nat and pass
// rules carry "gwstated:<link>", balancing rules "gwstated:loadbalance" or
// "gwstated:<sticky class>", so their states can be found and killed.
const LabelPrefix = "gwstated:"

// pf limits (sys/net/pfvar.h): labels and anchor names are NUL-terminated
// in 64-byte fields; interface names in IFNAMSIZ (16).
const (
	maxLabelLen   = 63
	maxAnchorName = 63
	maxIfaceName  = 15
)

// Render turns a verdict into the complete pf state for it: every anchor
// gwstated owns, in canonical order (nat-<link> for each link in config
// order, then pass-<link>, then the applications anchor, then the
// loadbalance anchor), the default route and the ruleset hash. Every anchor
// is present, with empty Rules when it must be empty, so a loader can empty
// it.
//
// A link is ready when its verdict is Up or it is in v.Active (so all_down:
// all and keep put links that are down to use); ready links get their nat-
// and pass- rules. Balanced traffic (loadbalance, applications, default
// route) uses v.Active only, in config order. A sticky class is pinned to
// its preferred link when that link is ready, else to the first active link.
//
// Render is pure: the same config and verdict give the same Ruleset, and
// the text holds nothing node-specific (no seq, no time), so every node
// with the same verdict and config reports the same Hash.
func Render(cfg *config.Config, v linkstate.Verdict) (Ruleset, error) {
	if cfg == nil {
		return Ruleset{}, fmt.Errorf("%w: no configuration", ErrUnrenderable)
	}
	legacy, dialectErr := renderDialect(cfg.PF.Syntax)
	links, linksErr := renderLinks(cfg, legacy)
	lan, lanErr := renderLAN(cfg)
	if err := errors.Join(dialectErr, linksErr, lanErr, renderAnchorNames(cfg), renderStickyCheck(cfg)); err != nil {
		return Ruleset{}, err
	}
	if err := renderMark(cfg, links, v); err != nil {
		return Ruleset{}, err
	}

	anchors := make([]Anchor, 0, 2*len(links)+2)
	for i := range links {
		anchors = append(anchors, renderNAT(cfg, lan, &links[i]))
	}
	for i := range links {
		anchors = append(anchors, renderPass(cfg, links, i))
	}
	anchors = append(anchors, renderApplications(cfg, lan, links), renderLoadbalance(cfg, lan, links, legacy))

	rs := Ruleset{Anchors: anchors}
	for i := range links {
		if links[i].active {
			rs.DefaultRoute = links[i].cfg.Gateway
			break
		}
	}
	rs.Hash = RulesetHash(rs.Anchors, rs.DefaultRoute)
	return rs, nil
}

// RulesetHash is the hex sha256 over the anchors' names and rules and the
// default route, each length-prefixed so that no two different rulesets
// share an encoding. Render sets Ruleset.Hash with it; a backend can
// recompute it over what it finds installed.
func RulesetHash(anchors []Anchor, defaultRoute netip.Addr) string {
	h := sha256.New()
	buf := make([]byte, 4096) // strings are copied through buf: sha256 has no WriteString
	put := func(s string) {
		binary.BigEndian.PutUint64(buf, uint64(len(s)))
		h.Write(buf[:8])
		for len(s) > 0 {
			n := copy(buf, s)
			h.Write(buf[:n])
			s = s[n:]
		}
	}
	binary.BigEndian.PutUint64(buf, uint64(len(anchors)))
	h.Write(buf[:8])
	for i := range anchors {
		put(anchors[i].Name)
		put(anchors[i].Rules)
	}
	if defaultRoute.IsValid() {
		put(defaultRoute.String())
	} else {
		put("")
	}
	return hex.EncodeToString(h.Sum(nil))
}

// rlink is one configured link with the pf text pieces its rules reuse.
type rlink struct {
	cfg    *config.Link
	ready  bool   // gets nat- and pass- rules
	active bool   // carries balanced traffic
	target string // route-to target: "198.51.100.100" or legacy "(fxp0 198.51.100.100)"
	source string // its own source address: "(fxp0)" or the nat_to address
	label  string // ` label "gwstated:isp1"`
}

func renderDialect(s string) (legacy bool, err error) {
	switch s {
	case "", "openbsd":
		return false, nil
	case "legacy":
		return true, nil
	}
	return false, fmt.Errorf("%w: pf.syntax: %q is not openbsd or legacy", ErrUnrenderable, s)
}

func renderLinks(cfg *config.Config, legacy bool) ([]rlink, error) {
	fam := cfg.LAN.Network.Addr().Is4()
	links := make([]rlink, len(cfg.Links))
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrUnrenderable}, a...)...))
	}
	for i := range cfg.Links {
		l := &cfg.Links[i]
		field := "links[" + strconv.Itoa(i) + "]"
		if !pfWord(l.Name) {
			bad("%s.name: %q is not a safe pf name", field, l.Name)
		}
		if len(LabelPrefix)+len(l.Name) > maxLabelLen {
			bad("%s.name: %q makes the pf label %q longer than %d bytes", field, l.Name, LabelPrefix+l.Name, maxLabelLen)
		}
		if !pfWord(l.Interface) || len(l.Interface) > maxIfaceName {
			bad("%s.interface: %q is not an interface name", field, l.Interface)
		}
		if msg := renderAddrProblem(l.Gateway, fam); msg != "" {
			bad("%s.gateway: %s", field, msg)
		}
		if l.NatTo.IsValid() {
			if msg := renderAddrProblem(l.NatTo, fam); msg != "" {
				bad("%s.nat_to: %s", field, msg)
			}
		}
		links[i] = rlink{cfg: l}
		lk := &links[i]
		if legacy {
			lk.target = "(" + l.Interface + " " + l.Gateway.String() + ")"
		} else {
			lk.target = l.Gateway.String()
		}
		if l.NatTo.IsValid() {
			lk.source = l.NatTo.String()
		} else {
			lk.source = "(" + l.Interface + ")"
		}
		lk.label = ` label "` + LabelPrefix + l.Name + `"`
	}
	return links, errors.Join(errs...)
}

// renderAddrProblem says what is wrong with a gateway or NAT address for a LAN of
// the given family (true: IPv4), or "" when nothing is.
func renderAddrProblem(a netip.Addr, lan4 bool) string {
	switch {
	case !a.IsValid():
		return "no address"
	case a.Zone() != "":
		return fmt.Sprintf("%s: a zoned address cannot be written in a pf rule", a)
	case a.Is4In6():
		return fmt.Sprintf("%s: an IPv4-mapped IPv6 address; write the IPv4 address", a)
	case a.Is4() != lan4:
		fam, lanFam := "IPv6", "IPv4"
		if a.Is4() {
			fam, lanFam = "IPv4", "IPv6"
		}
		return fmt.Sprintf("%s is %s but lan.network is %s (pf rejects mixed address families)", a, fam, lanFam)
	}
	return ""
}

func renderMark(cfg *config.Config, links []rlink, v linkstate.Verdict) error {
	names := make([]string, len(links))
	for i := range links {
		names[i] = links[i].cfg.Name
	}
	ready, active, err := v.Use(names)
	if err != nil {
		return err
	}
	for i := range links {
		links[i].ready, links[i].active = ready[i], active[i]
	}
	return nil
}

// rlan holds the LAN pieces of the balancing and nat rules.
type rlan struct {
	iface, network string
}

func renderLAN(cfg *config.Config) (rlan, error) {
	var errs []error
	if !pfWord(cfg.LAN.Interface) || len(cfg.LAN.Interface) > maxIfaceName {
		errs = append(errs, fmt.Errorf("%w: lan.interface: %q is not an interface name", ErrUnrenderable, cfg.LAN.Interface))
	}
	if !cfg.LAN.Network.IsValid() {
		errs = append(errs, fmt.Errorf("%w: lan.network: no network", ErrUnrenderable))
	} else if cfg.LAN.Network.Addr().Zone() != "" || cfg.LAN.Network.Addr().Is4In6() {
		errs = append(errs, fmt.Errorf("%w: lan.network: %s cannot be written in a pf rule", ErrUnrenderable, cfg.LAN.Network))
	}
	if err := errors.Join(errs...); err != nil {
		return rlan{}, err
	}
	return rlan{iface: cfg.LAN.Interface, network: cfg.LAN.Network.Masked().String()}, nil
}

// renderAnchorNames refuses anchor names pf cannot hold and names that two
// anchors share (e.g. an empty nat_prefix and a link named "loadbalance").
func renderAnchorNames(cfg *config.Config) error {
	var errs []error
	seen := make(map[string]string, 2*len(cfg.Links)+2)
	check := func(name, what string) {
		switch {
		case !pfWord(name) || strings.Contains(name, "."):
			errs = append(errs, fmt.Errorf("%w: %s: %q is not a safe pf anchor name", ErrUnrenderable, what, name))
		case len(name) > maxAnchorName:
			errs = append(errs, fmt.Errorf("%w: %s: anchor name %q is longer than %d bytes", ErrUnrenderable, what, name, maxAnchorName))
		case seen[name] != "":
			errs = append(errs, fmt.Errorf("%w: %s: anchor name %q is also the %s", ErrUnrenderable, what, name, seen[name]))
		default:
			seen[name] = what
		}
	}
	for i := range cfg.Links {
		check(cfg.PF.NATAnchor(cfg.Links[i].Name), "nat anchor of links["+strconv.Itoa(i)+"]")
	}
	for i := range cfg.Links {
		check(cfg.PF.PassAnchor(cfg.Links[i].Name), "pass anchor of links["+strconv.Itoa(i)+"]")
	}
	check(cfg.PF.ApplicationsAnchor, "pf.applications_anchor")
	check(cfg.PF.LoadbalanceAnchor, "pf.loadbalance_anchor")
	return errors.Join(errs...)
}

// pfWord reports whether s is non-empty and holds only letters, digits
// and _ - . (not first) — nothing pf's lexer or a shell treats specially,
// and no ':' (pf reads "fxp0:network" as a modifier).
// config validates names more strictly; this is Render's own guard.
func pfWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// renderNAT: match out on <if> from <lan> nat-to (<if>) | <nat_to>.
func renderNAT(cfg *config.Config, lan rlan, l *rlink) Anchor {
	a := Anchor{Name: cfg.PF.NATAnchor(l.cfg.Name), Kind: KindNAT, Link: l.cfg.Name}
	if !l.ready {
		return a
	}
	var b strings.Builder
	b.Grow(128)
	b.WriteString("# gwstated: NAT for link " + l.cfg.Name + "\n")
	b.WriteString("match out on " + l.cfg.Interface + " from " + lan.network + " nat-to " + l.source + l.label + "\n")
	a.Rules = b.String()
	return a
}

// renderPass: traffic sourced from link i's address that leaves by another
// link's interface is routed back to link i's gateway, one rule per other
// link.
func renderPass(cfg *config.Config, links []rlink, i int) Anchor {
	l := &links[i]
	a := Anchor{Name: cfg.PF.PassAnchor(l.cfg.Name), Kind: KindPass, Link: l.cfg.Name}
	if !l.ready || len(links) < 2 {
		return a
	}
	var b strings.Builder
	b.Grow(64 + (len(links)-1)*(48+len(l.source)+len(l.target)+len(l.label)))
	b.WriteString("# gwstated: traffic from link " + l.cfg.Name + " leaving by another link\n")
	for j := range links {
		if j == i {
			continue
		}
		b.WriteString("pass out on ")
		b.WriteString(links[j].cfg.Interface)
		b.WriteString(" from ")
		b.WriteString(l.source)
		b.WriteString(" route-to ")
		b.WriteString(l.target)
		b.WriteString(l.label)
		b.WriteByte('\n')
	}
	a.Rules = b.String()
	return a
}

// renderRouteTo writes the route-to option for the active links: a single target,
// or a round-robin pool.
func renderRouteTo(b *strings.Builder, links []rlink, legacy bool) {
	var targets []string
	for i := range links {
		if links[i].active {
			targets = append(targets, links[i].target)
		}
	}
	b.WriteString("route-to ")
	if len(targets) == 1 {
		b.WriteString(targets[0])
		return
	}
	sep := " "
	if legacy {
		sep = ", "
	}
	b.WriteString("{ ")
	b.WriteString(strings.Join(targets, sep))
	b.WriteString(" } round-robin")
}

// renderLoadbalance: pass in on <lan if> from <lan> route-to <active pool>.
func renderLoadbalance(cfg *config.Config, lan rlan, links []rlink, legacy bool) Anchor {
	a := Anchor{Name: cfg.PF.LoadbalanceAnchor, Kind: KindBalance}
	var names []string
	for i := range links {
		if links[i].active {
			names = append(names, links[i].cfg.Name)
		}
	}
	if len(names) == 0 {
		return a
	}
	var b strings.Builder
	b.Grow(128 + 40*len(names))
	b.WriteString("# gwstated: balance over " + strings.Join(names, " ") + "\n")
	b.WriteString("pass in on " + lan.iface + " from " + lan.network + " ")
	renderRouteTo(&b, links, legacy)
	b.WriteString(` label "` + LabelPrefix + "loadbalance" + `"` + "\n")
	a.Rules = b.String()
	return a
}

// renderStickyCheck refuses sticky classes that cannot be written as pf
// rules.
func renderStickyCheck(cfg *config.Config) error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrUnrenderable}, a...)...))
	}
	for si := range cfg.Sticky {
		s := &cfg.Sticky[si]
		field := "sticky[" + strconv.Itoa(si) + "]"
		if !pfWord(s.Name) || len(LabelPrefix)+len(s.Name) > maxLabelLen {
			bad("%s.name: %q is not a safe pf label name of at most %d bytes", field, s.Name, maxLabelLen-len(LabelPrefix))
		}
		if s.Proto != "tcp" && s.Proto != "udp" {
			bad("%s.proto: %q is not tcp or udp", field, s.Proto)
		}
		if len(s.Ports) == 0 {
			bad("%s.ports: no ports", field)
		}
		for pi, p := range s.Ports {
			if p < 1 || p > 65535 {
				bad("%s.ports[%d]: %d is not a port (1-65535)", field, pi, p)
			}
		}
		if _, ok := cfg.Link(s.Link); s.Link != "" && !ok {
			bad("%s.link: %q is not a configured link", field, s.Link)
		}
	}
	return errors.Join(errs...)
}

// renderApplications: one rule per sticky class, pinned to one link.
func renderApplications(cfg *config.Config, lan rlan, links []rlink) Anchor {
	a := Anchor{Name: cfg.PF.ApplicationsAnchor, Kind: KindBalance}
	firstActive := -1
	for i := range links {
		if links[i].active {
			firstActive = i
			break
		}
	}
	var b strings.Builder
	for si := range cfg.Sticky {
		s := &cfg.Sticky[si]
		pin := firstActive
		for i := range links {
			if s.Link != "" && links[i].cfg.Name == s.Link && links[i].ready {
				pin = i
			}
		}
		if pin < 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("# gwstated: sticky classes, each pinned to one link\n")
		}
		b.WriteString("pass in on " + lan.iface + " proto " + s.Proto + " from " + lan.network + " to port ")
		if len(s.Ports) == 1 {
			b.WriteString(strconv.Itoa(s.Ports[0]))
		} else {
			b.WriteString("{")
			for _, p := range s.Ports {
				b.WriteByte(' ')
				b.WriteString(strconv.Itoa(p))
			}
			b.WriteString(" }")
		}
		b.WriteString(" route-to " + links[pin].target)
		b.WriteString(` label "` + LabelPrefix + s.Name + `"` + "\n")
	}
	a.Rules = b.String()
	return a
}
