package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"gwstated/linkstate"
)

// ErrNoGossipKey is returned when cluster.gossip.key_file is empty and
// cluster.gossip.insecure is not set.
var ErrNoGossipKey = errors.New("cluster.gossip.key_file: no gossip key (run `gwctl keygen` and set key_file, or set cluster.gossip.insecure: true to run unencrypted)")

// maxStateBytes bounds one encoded NodeState. A state over the bound is
// sent without per-target details; if still over, it is not sent.
const maxStateBytes = 32 << 10

// GenerateKey returns a new random 32-byte gossip key (AES-256).
func GenerateKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate gossip key: %w", err)
	}
	return k, nil
}

// WriteKeyFile writes a new gossip key, base64 with a newline, to path with
// mode 0600. It refuses to overwrite an existing file.
func WriteKeyFile(path string) error {
	k, err := GenerateKey()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write gossip key: %w", err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(path)
		return fmt.Errorf("write gossip key %s: %w", path, err)
	}
	return nil
}

// ReadKeyFile reads a gossip key written by WriteKeyFile: base64 of 16, 24
// or 32 bytes (AES-128, -192, -256).
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster.gossip.key_file: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("cluster.gossip.key_file: %s is not base64: %w", path, err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("cluster.gossip.key_file: %s holds %d bytes; want 16, 24 or 32", path, len(k))
}

// NodeState is what one node gossips about itself. Gen orders the states of
// one node: a receiver keeps the highest. It starts at the wall clock in
// nanoseconds so a restarted node's states supersede its old ones.
type NodeState struct {
	Node         string                           `json:"node"`
	Gen          uint64                           `json:"gen"`
	Observations map[string]linkstate.Observation `json:"obs,omitempty"`
	CARP         []CARPStatus                     `json:"carp,omitempty"`
	ConfigHash   string                           `json:"config_hash,omitempty"`
	AppliedSeq   uint64                           `json:"applied_seq,omitempty"`
	AppliedHash  string                           `json:"applied_hash,omitempty"`
	Mode         Mode                             `json:"mode,omitempty"`
	Witness      bool                             `json:"witness,omitempty"`
	Leaving      bool                             `json:"leaving,omitempty"` // the node is leaving on purpose
}

// clone returns a deep enough copy for readers outside the lock.
func (s NodeState) clone() NodeState {
	s.Observations = maps.Clone(s.Observations)
	s.CARP = slices.Clone(s.CARP)
	return s
}

// encodeState encodes s within maxStateBytes.
func encodeState(s NodeState) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if len(b) <= maxStateBytes {
		return b, nil
	}
	s.Observations = maps.Clone(s.Observations)
	for k, o := range s.Observations {
		o.Targets = nil
		s.Observations[k] = o
	}
	b, err = json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("gossip state of %s is %d bytes, over the %d byte bound", s.Node, len(b), maxStateBytes)
	}
	return b, nil
}

// MemberState is a gossip member's state as a node sees it.
type MemberState string

// Member states as Member.State reports them.
const (
	MemberAlive   MemberState = "alive"
	MemberSuspect MemberState = "suspect"
	MemberDead    MemberState = "dead"
	MemberLeft    MemberState = "left"
)

// GossipEvent is one membership change seen by this node.
type GossipEvent struct {
	Member Member
	Time   time.Time
}

// gossipConfig is what Gossip.start needs; Node builds it from config.
type gossipConfig struct {
	Name             string
	Bind             string // host:port; port 0 picks a free port
	Advertise        string // host:port or empty
	Join             []string
	Key              []byte // nil: insecure
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	SuspicionMult    int
	GossipInterval   time.Duration
	PushPullInterval time.Duration
}

// Gossip is this node's memberlist: it carries every node's NodeState and
// tracks membership. Suspect is our own notion, since memberlist does not
// expose its failure detector's suspicion: a member memberlist still counts
// alive whose direct probes (PingDelegate) have not been answered for two
// probe rounds. Left versus dead: a node leaving on purpose first gossips a
// state with Leaving set; a member that disappears without one is dead.
type Gossip struct {
	log     *slog.Logger
	name    string
	witness bool
	probeIv time.Duration
	probeTo time.Duration

	mu       sync.Mutex
	ml       *memberlist.Memberlist // nil until start
	self     NodeState
	states   map[string]NodeState // by node, self excluded
	members  map[string]*memberInfo
	changed  chan struct{} // cap 1: states or membership changed
	sendc    chan struct{} // cap 1: this node's state must be sent (SendLoop)
	events   []GossipEvent // since the last Tick
	shutdown bool
	needPush bool // a member joined; push our state

	// Set by Node.New before start (hostile.go): who may gossip.
	probs *problems
	known map[string]bool // configured node names; empty: anyone with the key
	hash  string          // our config hash
}

type memberInfo struct {
	// node is memberlist's Node as of its last join or update event,
	// copied while memberlist holds its lock: push sends to this copy,
	// since memberlist rewrites the Nodes that Members returns in place.
	node    memberlist.Node
	addr    string
	alive   bool // memberlist lists it
	left    bool
	lastAck time.Time
	since   time.Time   // when it (re)joined
	state   MemberState // last reported, for change events
}

// newGossip prepares a Gossip; start makes it listen.
func newGossip(name string, witness bool, configHash string, log *slog.Logger) *Gossip {
	return &Gossip{
		log:     log,
		name:    name,
		witness: witness,
		self:    NodeState{Node: name, Gen: uint64(time.Now().UnixNano()), ConfigHash: configHash, Witness: witness, Mode: ModeEtcd},
		states:  map[string]NodeState{},
		members: map[string]*memberInfo{},
		changed: make(chan struct{}, 1),
		sendc:   make(chan struct{}, 1),
	}
}

// start creates the memberlist and joins the peers given; a failed join
// is logged, not fatal (the peers may start later and join us).
func (g *Gossip) start(cfg gossipConfig) error {
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	host, port, err := splitHostPort(cfg.Bind, "cluster.gossip.bind")
	if err != nil {
		return err
	}
	mc.BindAddr, mc.BindPort = host, port
	if cfg.Advertise != "" {
		ah, ap, err := splitHostPort(cfg.Advertise, "cluster.gossip.advertise")
		if err != nil {
			return err
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	}
	// The timings come from the parsed config (config.Default holds their
	// defaults, with the reasons); config.Validate keeps them positive.
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.GossipInterval = cfg.GossipInterval
	mc.PushPullInterval = cfg.PushPullInterval
	mc.SuspicionMult = cfg.SuspicionMult
	mc.TCPTimeout = 2 * time.Second
	g.probeIv, g.probeTo = mc.ProbeInterval, mc.ProbeTimeout
	if cfg.Key != nil {
		mc.SecretKey = cfg.Key
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	mc.Delegate = (*gossipDelegate)(g)
	mc.Events = (*gossipEvents)(g)
	mc.Ping = (*gossipPing)(g)
	mc.Logger = memberlistLogger(g.log)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("gossip on %s: %w", cfg.Bind, err)
	}
	g.mu.Lock()
	g.ml = ml
	g.mu.Unlock()
	if len(cfg.Join) > 0 {
		if n, err := ml.Join(cfg.Join); err != nil {
			g.log.Warn("gossip join failed; waiting for peers to join us", "peers", cfg.Join, "joined", n, "err", err)
		}
	}
	return nil
}

func (g *Gossip) memberlist() *memberlist.Memberlist {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shutdown {
		return nil
	}
	return g.ml
}

func splitHostPort(hp, field string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %q: %w", field, hp, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%s: %q: port %q is not a number 0..65535", field, hp, p)
	}
	if h == "" {
		h = "0.0.0.0"
	}
	return h, port, nil
}

// Addr returns the address other nodes join this one at.
func (g *Gossip) Addr() string {
	ml := g.memberlist()
	if ml == nil {
		return ""
	}
	return ml.LocalNode().Address()
}

// Join joins the peers at addrs (host:port) and returns how many answered.
func (g *Gossip) Join(addrs []string) (int, error) {
	ml := g.memberlist()
	if ml == nil {
		return 0, errors.New("gossip is not running")
	}
	return ml.Join(addrs)
}

// Changed is signalled (capacity 1, coalescing) when a peer's state or the
// membership changes.
func (g *Gossip) Changed() <-chan struct{} { return g.changed }

func (g *Gossip) signal() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// Update changes this node's own state with f, bumps its Gen and pushes it
// to every member at once over TCP (memberlist SendReliable), not waiting
// for the periodic push-pull.
func (g *Gossip) Update(f func(*NodeState)) {
	g.set(f)
	g.wantSend()
}

// set changes this node's state and returns a copy of it.
func (g *Gossip) set(f func(*NodeState)) NodeState {
	g.mu.Lock()
	f(&g.self)
	g.self.Gen++
	s := g.self.clone()
	g.mu.Unlock()
	g.signal()
	return s
}

// wantSend asks SendLoop to send this node's newest state to every member.
// It never blocks: callers (the prober's Publish, the agent's
// ReportApplied) must not wait on a peer that may be dead.
func (g *Gossip) wantSend() {
	select {
	case g.sendc <- struct{}{}:
	default: // a send is already due; it will carry the newest state
	}
}

// SendLoop sends this node's state to every member each time it changes,
// newest state only, until ctx ends. Node.Run owns it.
func (g *Gossip) SendLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.sendc:
			g.push(g.Self())
		}
	}
}

// push sends s to every member at once, each over its own reliable
// (TCP) stream in parallel, so a dead peer that memberlist has not yet
// declared dead does not hold up the live ones; it returns when all sends
// are done or have timed out.
func (g *Gossip) push(s NodeState) {
	b, err := encodeState(s)
	if err != nil {
		g.log.Error("gossip state not sent", "node", g.name, "err", err)
		return
	}
	ml := g.memberlist()
	if ml == nil {
		return
	}
	var to []memberlist.Node
	g.mu.Lock()
	for _, mi := range g.members {
		if mi.alive && mi.node.Name != "" {
			to = append(to, mi.node)
		}
	}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range to {
		wg.Go(func() {
			if err := ml.SendReliable(&m, b); err != nil {
				g.log.Debug("gossip push failed; push-pull will carry it", "node", m.Name, "err", err)
			}
		})
	}
	wg.Wait()
}

// Self returns a copy of this node's own state.
func (g *Gossip) Self() NodeState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.self.clone()
}

// merge keeps s if it is newer than what we hold.
func (g *Gossip) merge(s NodeState) {
	if s.Node == "" || s.Node == g.name || !g.admit(s) {
		return
	}
	g.mu.Lock()
	old, ok := g.states[s.Node]
	if ok && old.Gen >= s.Gen {
		g.mu.Unlock()
		return
	}
	g.states[s.Node] = s
	if mi := g.members[s.Node]; mi != nil && s.Leaving {
		mi.left = true
	}
	g.mu.Unlock()
	g.signal()
}

// View returns every node's state (self included) and whether memberlist
// counts it alive (a suspect member is still alive: memberlist has not
// declared it dead). Witness nodes and nodes that left are excluded.
func (g *Gossip) View() linkstate.Observations {
	g.mu.Lock()
	defer g.mu.Unlock()
	obs := linkstate.Observations{}
	if !g.self.Witness {
		obs[g.name] = linkstate.NodeView{Alive: true, Links: maps.Clone(g.self.Observations)}
	}
	for name, s := range g.states {
		if s.Witness {
			continue
		}
		mi := g.members[name]
		alive := mi != nil && mi.alive && !mi.left && !s.Leaving
		links := maps.Clone(s.Observations)
		if links == nil {
			links = map[string]linkstate.Observation{}
		}
		obs[name] = linkstate.NodeView{Alive: alive, Links: links}
	}
	return obs
}

// Members returns every member this node has seen, self included, sorted by name.
func (g *Gossip) Members() []Member {
	now := time.Now()
	// Never call memberlist with g.mu held: memberlist calls our event
	// delegates (which take g.mu) with its own node lock held.
	addr := g.Addr()
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []Member{{Name: g.name, Addr: addr, State: MemberAlive}}
	for name, mi := range g.members {
		out = append(out, Member{Name: name, Addr: mi.addr, State: g.memberState(mi, now)})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// suspectAfter is how long a live member may go without answering a direct
// probe before we call it suspect: two rounds of probing every member.
func (g *Gossip) suspectAfter(members int) time.Duration {
	return time.Duration(2*max(members-1, 1))*g.probeIv + g.probeTo
}

// memberState must be called with g.mu held.
func (g *Gossip) memberState(mi *memberInfo, now time.Time) MemberState {
	switch {
	case mi.left:
		return MemberLeft
	case !mi.alive:
		return MemberDead
	}
	last := mi.lastAck
	if last.Before(mi.since) {
		last = mi.since
	}
	if now.Sub(last) > g.suspectAfter(len(g.members)+1) {
		return MemberSuspect
	}
	return MemberAlive
}

// Tick re-evaluates suspicion; it returns the membership events since the
// last Tick (join, suspect, alive again, dead, left), oldest first.
func (g *Gossip) Tick(now time.Time) []GossipEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, mi := range g.members {
		st := g.memberState(mi, now)
		if st != mi.state {
			mi.state = st
			g.events = append(g.events, GossipEvent{Member: Member{Name: name, Addr: mi.addr, State: st}, Time: now})
		}
	}
	ev := g.events
	g.events = nil
	return ev
}

// Leave gossips a Leaving state, leaves the memberlist (telling peers) and
// shuts it down.
func (g *Gossip) Leave(timeout time.Duration) error {
	ml := g.memberlist()
	if ml == nil {
		return nil
	}
	// Sent synchronously: SendLoop has stopped by now, and the peers
	// should know this node leaves on purpose before memberlist says so.
	g.push(g.set(func(s *NodeState) { s.Leaving = true }))
	err := ml.Leave(timeout)
	g.mu.Lock()
	g.shutdown = true
	g.mu.Unlock()
	return errors.Join(err, ml.Shutdown())
}

// gossipDelegate is memberlist's Delegate: user messages are NodeStates.
type gossipDelegate Gossip

func (d *gossipDelegate) NodeMeta(limit int) []byte {
	if d.witness {
		return []byte("w")
	}
	return nil
}

func (d *gossipDelegate) NotifyMsg(b []byte) {
	var s NodeState
	if err := json.Unmarshal(b, &s); err != nil {
		(*Gossip)(d).undecodable("state message", b, err)
		return
	}
	(*Gossip)(d).merge(s)
}

func (d *gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState sends every state we know (ours and peers') at push-pull, so a
// node that missed a push catches up from any peer.
func (d *gossipDelegate) LocalState(join bool) []byte {
	g := (*Gossip)(d)
	g.mu.Lock()
	all := []NodeState{g.self.clone()}
	for _, s := range g.states {
		all = append(all, s.clone())
	}
	g.mu.Unlock()
	var buf bytes.Buffer
	for _, s := range all {
		b, err := encodeState(s)
		if err != nil {
			continue
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func (d *gossipDelegate) MergeRemoteState(b []byte, join bool) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		var s NodeState
		if err := json.Unmarshal(line, &s); err != nil {
			(*Gossip)(d).undecodable("push-pull state", line, err)
			continue
		}
		(*Gossip)(d).merge(s)
	}
}

// gossipEvents is memberlist's EventDelegate.
type gossipEvents Gossip

func (e *gossipEvents) NotifyJoin(n *memberlist.Node) {
	g := (*Gossip)(e)
	if n.Name == g.name {
		return
	}
	now := time.Now()
	g.mu.Lock()
	mi := g.memberLocked(n)
	mi.node = *n
	mi.addr, mi.alive, mi.left, mi.since = n.Address(), true, false, now
	mi.state = MemberAlive
	g.events = append(g.events, GossipEvent{Member: Member{Name: n.Name, Addr: mi.addr, State: MemberAlive}, Time: now})
	g.needPush = true
	g.mu.Unlock()
	g.log.Info("gossip member joined", "member", n.Name, "addr", n.Address())
	g.signal()
}

// PushIfJoined has SendLoop send our state to every member if someone
// joined since the last call, so a newcomer has it now rather than at the
// next push-pull. (NotifyJoin must not block memberlist.)
func (g *Gossip) PushIfJoined() {
	g.mu.Lock()
	need := g.needPush
	g.needPush = false
	g.mu.Unlock()
	if need {
		g.wantSend()
	}
}

func (e *gossipEvents) NotifyLeave(n *memberlist.Node) {
	g := (*Gossip)(e)
	if n.Name == g.name {
		return
	}
	now := time.Now()
	g.mu.Lock()
	mi := g.memberLocked(n)
	mi.alive = false
	if s, ok := g.states[n.Name]; ok && s.Leaving {
		mi.left = true
	}
	st := g.memberState(mi, now)
	mi.state = st
	g.events = append(g.events, GossipEvent{Member: Member{Name: n.Name, Addr: mi.addr, State: st}, Time: now})
	g.mu.Unlock()
	g.log.Warn("gossip member gone", "member", n.Name, "state", st)
	g.signal()
}

func (e *gossipEvents) NotifyUpdate(n *memberlist.Node) {
	g := (*Gossip)(e)
	if n.Name == g.name {
		return
	}
	g.mu.Lock()
	if mi := g.members[n.Name]; mi != nil {
		mi.node, mi.addr = *n, n.Address()
	}
	g.mu.Unlock()
}

// gossipPing is memberlist's PingDelegate: it records direct probe answers.
type gossipPing Gossip

func (p *gossipPing) AckPayload() []byte { return nil }

func (p *gossipPing) NotifyPingComplete(n *memberlist.Node, rtt time.Duration, payload []byte) {
	g := (*Gossip)(p)
	g.mu.Lock()
	if mi := g.members[n.Name]; mi != nil {
		mi.lastAck = time.Now()
	}
	g.mu.Unlock()
}

// memberlistLogger sends memberlist's "[LEVEL] memberlist: ..." lines to
// slog at the matching level.
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(mlWriter{l}, "", 0)
}

type mlWriter struct{ l *slog.Logger }

func (w mlWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	lvl := slog.LevelDebug
	switch {
	case strings.HasPrefix(msg, "[ERR]"):
		lvl = slog.LevelError
	case strings.HasPrefix(msg, "[WARN]"):
		lvl = slog.LevelWarn
	}
	w.l.Log(context.Background(), lvl, "memberlist: "+msg)
	return len(p), nil
}

var _ io.Writer = mlWriter{}

// memberLocked returns the record of member n, creating it (with n's
// address) on first sight. g.mu is held.
func (g *Gossip) memberLocked(n *memberlist.Node) *memberInfo {
	mi := g.members[n.Name]
	if mi == nil {
		mi = &memberInfo{addr: n.Address()}
		g.members[n.Name] = mi
	}
	return mi
}
