package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is matched (errors.Is) by every *ValidationError.
var ErrInvalid = errors.New("invalid configuration")

// Problem is one thing wrong with a configuration.
type Problem struct {
	Path  string // the field, e.g. links[1].gateway; empty for the file as a whole
	Value string // the offending value as written, if any
	Msg   string // what is wrong, e.g. "is not an IP address"
}

// String is the problem as one line: `links[1].gateway: "x" is not an IP
// address`. The value is quoted with Go escapes, so a value holding a
// newline or a quote stays on its line.
func (p Problem) String() string {
	var b strings.Builder
	if p.Path != "" {
		b.WriteString(escapeControl(p.Path))
		b.WriteString(": ")
	}
	if p.Value != "" {
		b.WriteString(strconv.Quote(p.Value))
		b.WriteByte(' ')
	}
	b.WriteString(escapeControl(p.Msg))
	return b.String()
}

// escapeControl writes control characters as Go escapes, so that no problem
// spans two lines whatever text a library's error carried.
func escapeControl(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ValidationError lists every problem found in a configuration.
type ValidationError struct {
	Problems []Problem
}

// Error is one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func asError(ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// Validate checks the configuration as a whole, the same on every node, and
// returns a *ValidationError with every problem, or nil. It does not check
// the node selection (see ValidateNode). It expects defaults to be filled.
func (c *Config) Validate() error { return asError(c.problems()) }

// ValidateNode checks the node selection: the node name is a valid name,
// it is one of nodes when nodes is not empty (a typo in --node must not run
// a node with no overrides), and with an embedded etcd member the node has
// peer and client URLs and is in initial_cluster. Parse runs it, except
// under Offline when the node came from the host name.
func (c *Config) ValidateNode() error { return asError(c.nodeProblems()) }

// Name rules. Names become pf anchor names (at most 63 bytes: pf's
// PF_ANCHOR_NAME_SIZE is 64 with the NUL), rule labels "gwstated:<link>"
// (at most 63 bytes: PF_RULE_LABEL_SIZE is 64), etcd key segments and
// memberlist node names.
var (
	nameRe        = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	ifnameRe      = regexp.MustCompile(`^[a-z]+[0-9]+$`)
	linuxIfnameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)
	groupRe       = regexp.MustCompile(`^[a-z][a-z_]*$`)
	hostRe        = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	usernameR     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`)
	pathRe        = regexp.MustCompile(`^[A-Za-z0-9._+@/-]+$`)
)

const (
	maxAnchor   = 63 // pf anchor name
	maxLinkName = 63 - len("gwstated:")
	maxName     = 63
	maxIfname   = 15  // IFNAMSIZ 16 with the NUL
	maxDemote   = 128 // ifconfig(8) carpdemote: strtonum(n, 0, 128) (ifconfig.c 1.476)
)

const (
	msgRequired = "is required"
	msgName     = "is not a valid name: use a-z, 0-9, '-' and '_', starting with a letter or digit"
	msgIfname   = "is not an interface name (e.g. em0, fxp1, vlan100)"
	// Linux allows more in a name; these are the characters nft strings and
	// ip(8) arguments take without question.
	msgLinuxIfname = "is not an interface name: letters, digits, '.', '_' and '-', starting with a letter (e.g. eth0, enp3s0, wan0.100)"
)

// checker collects problems. linux (dataplane: nft) takes Linux interface
// names (enp3s0, wan0.100, br-lan).
type checker struct {
	ps    []Problem
	linux bool
}

func (k *checker) add(path, value, msg string) {
	k.ps = append(k.ps, Problem{Path: path, Value: value, Msg: msg})
}

func (k *checker) addf(path, value, format string, args ...any) {
	k.add(path, value, fmt.Sprintf(format, args...))
}

func (k *checker) name(p, v string, max int, required bool) bool {
	switch {
	case v == "":
		if required {
			k.add(p, "", msgRequired)
		}
		return false
	case !nameRe.MatchString(v):
		k.add(p, v, msgName)
		return false
	case len(v) > max:
		k.addf(p, v, "is longer than %d characters", max)
		return false
	}
	return true
}

func (k *checker) ifname(p, v string) bool {
	switch {
	case v == "":
		k.add(p, "", msgRequired)
		return false
	case k.linux && !linuxIfnameRe.MatchString(v):
		k.add(p, v, msgLinuxIfname)
		return false
	case !k.linux && !ifnameRe.MatchString(v):
		k.add(p, v, msgIfname)
		return false
	case len(v) > maxIfname:
		k.addf(p, v, "is longer than %d characters (an interface name)", maxIfname)
		return false
	}
	return true
}

func (k *checker) oneOf(p, v string, allowed ...string) {
	if v == "" {
		k.addf(p, "", "is required: one of %s", strings.Join(allowed, ", "))
		return
	}
	if !slices.Contains(allowed, v) {
		k.addf(p, v, "must be one of %s", strings.Join(allowed, ", "))
	}
}

func (k *checker) positive(p string, d time.Duration) bool {
	if d <= 0 {
		k.add(p, formatDuration(d), "must be positive")
		return false
	}
	return true
}

// addr checks a usable unicast address; family (4 or 6, 0 any) is the
// address family it must have.
func (k *checker) addr(p string, a netip.Addr, required bool, family int, familyOf string) bool {
	switch {
	case !a.IsValid():
		if required {
			k.add(p, "", msgRequired)
		}
		return false
	case a.Zone() != "":
		k.add(p, a.String(), "must not have a zone (%...)")
		return false
	case a.Is4In6():
		k.addf(p, a.String(), "is an IPv4-mapped IPv6 address: write %s", a.Unmap())
		return false
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		k.add(p, a.String(), "is not a unicast address")
		return false
	case family != 0 && addrFamily(a) != family:
		k.addf(p, a.String(), "is an IPv%d address but %s is IPv%d", addrFamily(a), familyOf, family)
		return false
	}
	return true
}

func addrFamily(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// absPath checks a file or directory path: absolute, and plain characters
// only (paths never reach a shell, but a firewall's config has no need for
// quotes, spaces or ';' in them either).
func (k *checker) absPath(p, v string, required bool) {
	switch {
	case v == "":
		if required {
			k.add(p, "", msgRequired)
		}
	case !path.IsAbs(v):
		k.add(p, v, "must be an absolute path")
	case !pathRe.MatchString(v):
		k.add(p, v, "must be a path of letters, digits, '.', '_', '-', '+', '@' and '/'")
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// hostPort checks host:port with a numeric port 1-65535. ipOnly requires
// the host to be an IP address; emptyHost allows ":9707".
func (k *checker) hostPort(p, v string, ipOnly, emptyHost bool) {
	if msg := hostPortProblem(v, ipOnly, emptyHost); msg != "" {
		k.add(p, v, msg)
	}
}

func hostPortProblem(v string, ipOnly, emptyHost bool) string {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "is not host:port (e.g. 10.0.0.2:7946)"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
		return "must end in a port number 1-65535"
	}
	switch {
	case host == "":
		if !emptyHost {
			return "has no host"
		}
	case ipOnly:
		if a, err := netip.ParseAddr(host); err != nil || a.Zone() != "" {
			return "must be an IP address and port (e.g. 10.0.0.2:7946)"
		}
	default:
		if a, err := netip.ParseAddr(host); err == nil {
			if a.Zone() != "" {
				return "must not have a zone (%...)"
			}
		} else if !hostRe.MatchString(host) || len(host) > 253 {
			return "has an invalid host name"
		}
	}
	return ""
}

// httpURL checks an etcd URL: http or https, host and port, nothing else.
func (k *checker) httpURL(p, v string) {
	u, err := url.Parse(v)
	if err != nil || strings.ContainsFunc(v, isControl) {
		k.add(p, v, "is not a URL (e.g. http://10.0.0.3:2379)")
		return
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		k.add(p, v, "must be an http:// or https:// URL (e.g. http://10.0.0.3:2379)")
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.ForceQuery:
		k.add(p, v, "must be scheme://host:port only")
	case u.Port() == "":
		k.add(p, v, "has no port (e.g. http://10.0.0.3:2379)")
	default:
		if msg := hostPortProblem(u.Host, false, false); msg != "" {
			k.add(p, v, strings.Replace(msg, "host:port (e.g. 10.0.0.2:7946)", "a URL (e.g. http://10.0.0.3:2379)", 1))
		}
	}
}

func joinField(parent, key string) string {
	seg := key
	if !nameRe.MatchString(strings.ToLower(key)) {
		seg = "[" + strconv.Quote(key) + "]"
		if parent == "" {
			return seg
		}
		return parent + seg
	}
	if parent == "" {
		return seg
	}
	return parent + "." + seg
}

func joinIndex(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

// problems is Validate's list.
func (c *Config) problems() []Problem {
	k := &checker{linux: c.Dataplane == DataplaneNFT}
	c.checkCluster(k)

	// lan
	k.ifname("lan.interface", c.LAN.Interface)
	lanFamily := 0
	switch n := c.LAN.Network; {
	case !n.IsValid():
		k.add("lan.network", "", msgRequired)
	case n.Addr().Is4In6():
		k.add("lan.network", n.String(), "is an IPv4-mapped IPv6 network: write it as IPv4")
	case n != n.Masked():
		k.addf("lan.network", n.String(), "is not a network address: did you mean %s", n.Masked())
		lanFamily = addrFamily(n.Addr())
	default:
		lanFamily = addrFamily(n.Addr())
	}

	c.checkLinks(k, lanFamily)
	c.checkSticky(k)

	k.oneOf("all_down", c.AllDown, "all", "none", "keep")
	d := c.Damping
	if !(d.Penalty >= 0) {
		k.add("damping.penalty", fmtFloat(d.Penalty), "must be 0 (off) or more")
	}
	if d.Penalty > 0 {
		k.positive("damping.half_life", d.HalfLife)
		if !(d.Reuse > 0) {
			k.add("damping.reuse", fmtFloat(d.Reuse), "must be positive")
		}
		if !(d.Suppress > d.Reuse) {
			k.addf("damping.suppress", fmtFloat(d.Suppress), "must be above damping.reuse (%s)", fmtFloat(d.Reuse))
		}
	}

	c.checkPF(k)
	c.checkDataplane(k)

	// carp
	seenCarp := map[string]bool{}
	for i, ifn := range c.CARP.Interfaces {
		p := joinIndex("carp.interfaces", i)
		if k.ifname(p, ifn) {
			if seenCarp[ifn] {
				k.add(p, ifn, "is listed twice")
			}
			seenCarp[ifn] = true
		}
	}
	switch g := c.CARP.Group; {
	case g == "":
		k.add("carp.group", "", msgRequired)
	case !groupRe.MatchString(g) || len(g) > maxIfname:
		k.add("carp.group", g, "is not an interface group name (letters and '_', no digit at the end, at most 15)")
	}
	if c.CARP.Demote < 0 || c.CARP.Demote > maxDemote {
		k.addf("carp.demote", strconv.Itoa(c.CARP.Demote), "must be between 0 (off) and %d", maxDemote)
	}

	c.checkNodes(k)

	if c.Metrics.Listen != "" {
		k.hostPort("metrics.listen", c.Metrics.Listen, false, true)
	}
	return k.ps
}

func (c *Config) checkCluster(k *checker) {
	k.name("cluster.name", c.Cluster.Name, maxName, true)
	k.oneOf("cluster.decide", c.Cluster.Decide, "any", "majority", "all")
	k.oneOf("cluster.on_etcd_loss", c.Cluster.OnEtcdLoss, "hold", "gossip")

	g := c.Cluster.Gossip
	if g.Bind == "" {
		k.add("cluster.gossip.bind", "", msgRequired)
	} else {
		k.hostPort("cluster.gossip.bind", g.Bind, true, false)
	}
	if g.Advertise != "" {
		k.hostPort("cluster.gossip.advertise", g.Advertise, true, false)
	}
	for i, j := range g.Join {
		k.hostPort(joinIndex("cluster.gossip.join", i), j, false, false)
	}
	switch {
	case g.KeyFile == "" && !g.Insecure:
		k.add("cluster.gossip.key_file", "", "is required (gwctl keygen writes one), or set cluster.gossip.insecure: true to gossip unencrypted")
	case g.KeyFile != "" && g.Insecure:
		k.add("cluster.gossip.insecure", "", "cannot be true with a key_file set")
	default:
		k.absPath("cluster.gossip.key_file", g.KeyFile, false)
	}
	k.positive("cluster.gossip.probe_interval", g.ProbeInterval)
	if k.positive("cluster.gossip.probe_timeout", g.ProbeTimeout) && g.ProbeTimeout > g.ProbeInterval && g.ProbeInterval > 0 {
		k.addf("cluster.gossip.probe_timeout", formatDuration(g.ProbeTimeout), "must not exceed probe_interval (%s)", formatDuration(g.ProbeInterval))
	}
	if g.SuspicionMult < 1 {
		k.add("cluster.gossip.suspicion_mult", strconv.Itoa(g.SuspicionMult), "must be at least 1")
	}
	k.positive("cluster.gossip.gossip_interval", g.GossipInterval)
	k.positive("cluster.gossip.push_pull_interval", g.PushPullInterval)

	e := c.Cluster.Etcd
	if len(e.Endpoints) == 0 && e.Embed == nil {
		k.add("cluster.etcd.endpoints", "", "is required (or set cluster.etcd.embed to run a member in the agent)")
	}
	for i, u := range e.Endpoints {
		k.httpURL(joinIndex("cluster.etcd.endpoints", i), u)
	}
	k.positive("cluster.etcd.dial_timeout", e.DialTimeout)
	k.positive("cluster.etcd.request_timeout", e.RequestTimeout)
	if e.SessionTTL < time.Second || e.SessionTTL%time.Second != 0 {
		k.add("cluster.etcd.session_ttl", formatDuration(e.SessionTTL), "must be whole seconds, at least 1s (an etcd lease TTL)")
	}
	if e.Username != "" && (!usernameR.MatchString(e.Username) || len(e.Username) > 128) {
		k.add("cluster.etcd.username", e.Username, "is not a valid user name")
	}
	if e.Username != "" && e.PasswordFile == "" {
		k.add("cluster.etcd.password_file", "", "is required with a username")
	}
	if e.Username == "" && e.PasswordFile != "" {
		k.add("cluster.etcd.username", "", "is required with a password_file")
	}
	k.absPath("cluster.etcd.password_file", e.PasswordFile, false)
	k.absPath("cluster.etcd.tls.ca", e.TLS.CA, false)
	k.absPath("cluster.etcd.tls.cert", e.TLS.Cert, false)
	k.absPath("cluster.etcd.tls.key", e.TLS.Key, false)
	if (e.TLS.Cert == "") != (e.TLS.Key == "") {
		k.add("cluster.etcd.tls", "", "cert and key go together")
	}
	if e.AuditRetention < 1 {
		k.add("cluster.etcd.audit_retention", strconv.Itoa(e.AuditRetention), "must be at least 1")
	}
	if em := e.Embed; em != nil {
		k.absPath("cluster.etcd.embed.data_dir", em.DataDir, true)
		if em.PeerURL != "" {
			k.httpURL("cluster.etcd.embed.peer_url", em.PeerURL)
		}
		if em.ClientURL != "" {
			k.httpURL("cluster.etcd.embed.client_url", em.ClientURL)
		}
		if len(em.InitialCluster) == 0 {
			k.add("cluster.etcd.embed.initial_cluster", "", "is required: member name -> peer URL of every member")
		}
		for _, n := range sortedKeys(em.InitialCluster) {
			p := joinField("cluster.etcd.embed.initial_cluster", n)
			if k.name(p, n, maxName, true) {
				k.httpURL(p, em.InitialCluster[n])
			}
		}
		k.oneOf("cluster.etcd.embed.cluster_state", em.ClusterState, "new", "existing")
	}
}

func (c *Config) checkLinks(k *checker, lanFamily int) {
	if len(c.Links) == 0 {
		k.add("links", "", "at least one link is required")
	}
	names := map[string]int{}
	ifaces := map[string]int{}
	for i, l := range c.Links {
		p := joinIndex("links", i)
		k.uniqueName(p, "links", l.Name, i, names)
		if k.ifname(p+".interface", l.Interface) {
			switch j, dup := ifaces[l.Interface]; {
			case dup:
				k.addf(p+".interface", l.Interface, "is also the interface of links[%d]", j)
			case l.Interface == c.LAN.Interface:
				k.add(p+".interface", l.Interface, "is also lan.interface")
			default:
				ifaces[l.Interface] = i
			}
		}
		gwOK := k.addr(p+".gateway", l.Gateway, true, lanFamily, "lan.network")
		if l.Tier < 1 {
			k.add(p+".tier", strconv.Itoa(l.Tier), "must be 1 or more")
		}
		k.addr(p+".nat_to", l.NatTo, false, lanFamily, "lan.network")
		c.checkProbe(k, p+".probe", l, gwOK, lanFamily)
	}
}

func (c *Config) checkProbe(k *checker, p string, l Link, gwOK bool, lanFamily int) {
	pr := l.Probe
	if _, ok := Profiles[pr.Profile]; !ok {
		k.addf(p+".profile", pr.Profile, "is not a probe profile (known: %s)", strings.Join(sortedKeys(Profiles), ", "))
	}
	seen := map[netip.Addr]bool{}
	for i, t := range pr.Targets {
		tp := joinIndex(p+".targets", i)
		if t == l.Gateway && !gwOK {
			continue // the default target; reported as the gateway
		}
		if k.addr(tp, t, true, lanFamily, "lan.network") {
			if seen[t] {
				k.add(tp, t.String(), "is listed twice")
			}
			seen[t] = true
		}
	}
	if len(pr.Targets) > 0 && (pr.Need < 1 || pr.Need > len(pr.Targets)) {
		k.addf(p+".need", strconv.Itoa(pr.Need), "must be between 1 and the number of targets (%d)", len(pr.Targets))
	}
	if k.positive(p+".interval", pr.Interval) {
		if pr.Interval < 10*time.Millisecond || pr.Interval > time.Minute {
			k.add(p+".interval", formatDuration(pr.Interval), "must be between 10ms and 1m")
		}
	}
	if k.positive(p+".timeout", pr.Timeout) && pr.Timeout > 10*time.Second {
		k.add(p+".timeout", formatDuration(pr.Timeout), "must be at most 10s")
	}
	if pr.Fall < 1 {
		k.add(p+".fall", strconv.Itoa(pr.Fall), "must be 1 or more")
	}
	if pr.Rise < 1 {
		k.add(p+".rise", strconv.Itoa(pr.Rise), "must be 1 or more")
	}
	switch {
	case pr.Window < 1:
		k.add(p+".window", strconv.Itoa(pr.Window), "must be 1 or more")
	case pr.Window > 10000:
		k.add(p+".window", strconv.Itoa(pr.Window), "must be at most 10000")
	case pr.Fall >= 1 && pr.Window < pr.Fall:
		k.addf(p+".window", strconv.Itoa(pr.Window), "must be at least fall (%d)", pr.Fall)
	}
	downOK := percentOK(k, p+".loss_down", pr.LossDown)
	if percentOK(k, p+".loss_up", pr.LossUp) && downOK && pr.LossUp >= pr.LossDown {
		k.addf(p+".loss_up", pr.LossUp.String(), "must be below loss_down (%s)", pr.LossDown)
	}
	if pr.RTTDown < 0 {
		k.add(p+".rtt_down", formatDuration(pr.RTTDown), "must be 0 (off) or positive")
	}
}

func percentOK(k *checker, p string, v Percent) bool {
	if !(v >= 0 && v <= 100) {
		k.add(p, v.String(), "must be between 0% and 100%")
		return false
	}
	return true
}

// uniqueName checks the name of list[i] (at p) and that no earlier item of
// list has it; seen maps the names checked so far to their index.
func (k *checker) uniqueName(p, list, name string, i int, seen map[string]int) {
	if !k.name(p+".name", name, maxLinkName, true) {
		return
	}
	if j, dup := seen[name]; dup {
		k.addf(p+".name", name, "is also the name of %s[%d]", list, j)
	} else {
		seen[name] = i
	}
}

func (c *Config) checkSticky(k *checker) {
	names := map[string]int{}
	for i, s := range c.Sticky {
		p := joinIndex("sticky", i)
		k.uniqueName(p, "sticky", s.Name, i, names)
		k.oneOf(p+".proto", s.Proto, "tcp", "udp")
		if len(s.Ports) == 0 {
			k.add(p+".ports", "", "at least one port is required")
		}
		seen := map[int]bool{}
		for j, port := range s.Ports {
			pp := joinIndex(p+".ports", j)
			switch {
			case port < 1 || port > 65535:
				k.add(pp, strconv.Itoa(port), "is not a port number (1-65535)")
			case seen[port]:
				k.add(pp, strconv.Itoa(port), "is listed twice")
			}
			seen[port] = true
		}
		if s.Link != "" {
			if _, ok := c.Link(s.Link); !ok {
				k.add(p+".link", s.Link, "is not a link"+known("links", c.linkNames()))
			}
		}
	}
}

// linkNames lists the valid link names, for messages.
func (c *Config) linkNames() []string {
	var out []string
	for _, l := range c.Links {
		if nameRe.MatchString(l.Name) && !slices.Contains(out, l.Name) {
			out = append(out, l.Name)
		}
	}
	return out
}

// known is " (what: a, b)" for a message, or nothing when names is empty.
func known(what string, names []string) string {
	switch {
	case len(names) == 0:
		return ""
	case what == "":
		return " (" + strings.Join(names, ", ") + ")"
	}
	return " (" + what + ": " + strings.Join(names, ", ") + ")"
}

// validNames lists the valid names among a map's keys, sorted, for messages.
func validNames[V any](m map[string]V) []string {
	var out []string
	for _, n := range sortedKeys(m) {
		if nameRe.MatchString(n) {
			out = append(out, n)
		}
	}
	return out
}

func (c *Config) checkPF(k *checker) {
	pf := c.PF
	k.oneOf("pf.backend", pf.Backend, "pfctl", "dir")
	k.oneOf("pf.syntax", pf.Syntax, "openbsd", "legacy")
	k.absPath("pf.dir", pf.Dir, true)
	if pf.Rtable < 0 || pf.Rtable > 255 {
		k.add("pf.rtable", strconv.Itoa(pf.Rtable), "must be between 0 and 255")
	}
	k.positive("pf.drift_interval", pf.DriftInterval)

	anchors := map[string]string{} // anchor name -> the field that made it
	claim := func(field, value, anchor string) {
		if prev, dup := anchors[anchor]; dup {
			if value == anchor {
				k.addf(field, value, "is also the anchor of %s", prev)
			} else {
				k.addf(field, value, "makes anchor %q, also the anchor of %s", anchor, prev)
			}
			return
		}
		anchors[anchor] = field
	}
	if k.name("pf.loadbalance_anchor", pf.LoadbalanceAnchor, maxAnchor, true) {
		claim("pf.loadbalance_anchor", pf.LoadbalanceAnchor, pf.LoadbalanceAnchor)
	}
	if k.name("pf.applications_anchor", pf.ApplicationsAnchor, maxAnchor, true) {
		claim("pf.applications_anchor", pf.ApplicationsAnchor, pf.ApplicationsAnchor)
	}
	natOK := k.name("pf.nat_prefix", pf.NATPrefix, maxAnchor, true)
	passOK := k.name("pf.pass_prefix", pf.PassPrefix, maxAnchor, true)
	if natOK && passOK && pf.NATPrefix == pf.PassPrefix {
		k.add("pf.pass_prefix", pf.PassPrefix, "must differ from pf.nat_prefix")
		return
	}
	for i, l := range c.Links {
		if l.Name == "" || !nameRe.MatchString(l.Name) {
			continue // reported with the link
		}
		p := joinIndex("links", i) + ".name"
		for _, a := range []struct {
			ok   bool
			name string
		}{{natOK, pf.NATAnchor(l.Name)}, {passOK, pf.PassAnchor(l.Name)}} {
			if !a.ok {
				continue
			}
			if len(a.name) > maxAnchor {
				k.addf(p, l.Name, "makes anchor %q, longer than %d characters", a.name, maxAnchor)
				continue
			}
			claim(p, l.Name, a.name)
		}
	}
}

func (c *Config) checkNodes(k *checker) {
	for _, n := range sortedKeys(c.Nodes) {
		p := joinField("nodes", n)
		k.name(p, n, maxName, true)
		spec := c.Nodes[n]
		for _, link := range sortedKeys(spec.ProbeSource) {
			sp := joinField(p+".probe_source", link)
			l, ok := c.Link(link)
			if !ok {
				k.add(p+".probe_source", link, "is not a link"+known("links", c.linkNames()))
				continue
			}
			family := 0
			if len(l.Probe.Targets) > 0 && l.Probe.Targets[0].IsValid() {
				family = addrFamily(l.Probe.Targets[0])
			}
			k.addr(sp, spec.ProbeSource[link], true, family, "the link's probe target")
		}
		if spec.Gossip.Bind != "" {
			k.hostPort(p+".gossip.bind", spec.Gossip.Bind, true, false)
		}
		if spec.Gossip.Advertise != "" {
			k.hostPort(p+".gossip.advertise", spec.Gossip.Advertise, true, false)
		}
		if spec.Etcd.PeerURL != "" {
			k.httpURL(p+".etcd.peer_url", spec.Etcd.PeerURL)
		}
		if spec.Etcd.ClientURL != "" {
			k.httpURL(p+".etcd.client_url", spec.Etcd.ClientURL)
		}
		k.absPath(p+".etcd.data_dir", spec.Etcd.DataDir, false)
		k.absPath(p+".vrrp.track_file", spec.VRRP.TrackFile, false)
	}
}

// nodeProblems is ValidateNode's list.
func (c *Config) nodeProblems() []Problem {
	k := &checker{}
	if !k.name("node", c.Node, maxName, true) {
		return k.ps
	}
	if len(c.Nodes) > 0 {
		if _, ok := c.Nodes[c.Node]; !ok {
			k.add("node", c.Node, "is not one of nodes"+known("", validNames(c.Nodes)))
			return k.ps
		}
	}
	if e := c.Embed(); e != nil {
		p := joinField("nodes", c.Node) + ".etcd"
		if e.PeerURL == "" {
			k.add(p+".peer_url", "", "is required with cluster.etcd.embed (or set cluster.etcd.embed.peer_url)")
		}
		if e.ClientURL == "" {
			k.add(p+".client_url", "", "is required with cluster.etcd.embed (or set cluster.etcd.embed.client_url)")
		}
		if _, ok := e.InitialCluster[c.Node]; !ok && len(e.InitialCluster) > 0 {
			k.addf("cluster.etcd.embed.initial_cluster", "", "has no member %q (this node)", c.Node)
		}
	}
	return k.ps
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func fmtFloat(f float64) string {
	if math.IsNaN(f) {
		return "NaN"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
