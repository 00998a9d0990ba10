package lab

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/pfapply"
)

// clusterTemplate is the lab's cluster configuration: the demo's "embedded
// default", filled in by WriteConfig.
//
//go:embed cluster.yaml.tmpl
var clusterTemplate string

// Binaries are the programs a Cluster runs, built once by Build.
type Binaries struct {
	Gwstated string // cmd/agent
	Gwctl    string // cmd/ctl
	Etcd     string // lab/labetcd: the separately started etcd member
}

// Build compiles gwstated, gwctl and labetcd into dir. It runs `go build`
// with the module's package paths, so the working directory must be inside
// the gwstated source tree (as it is for go test, go run and make).
func Build(ctx context.Context, dir string) (Binaries, error) {
	b := Binaries{
		Gwstated: filepath.Join(dir, "gwstated"),
		Gwctl:    filepath.Join(dir, "gwctl"),
		Etcd:     filepath.Join(dir, "labetcd"),
	}
	for _, p := range []struct{ out, pkg string }{
		{b.Gwstated, "gwstated/cmd/agent"}, {b.Gwctl, "gwstated/cmd/ctl"}, {b.Etcd, "gwstated/lab/labetcd"},
	} {
		if err := run(ctx, "go", "build", "-o", p.out, p.pkg); err != nil {
			return b, fmt.Errorf("lab: build %s (run from the gwstated source tree): %w", p.pkg, err)
		}
	}
	return b, nil
}

// EtcdMode chooses where the cluster's etcd runs.
type EtcdMode int

const (
	// EtcdSeparate runs etcd as its own processes (labetcd), one member in
	// each of fw1, fw2 and the witness namespace on the sync segment; the
	// agents are only its clients.
	EtcdSeparate EtcdMode = iota
	// EtcdEmbedded sets cluster.etcd.embed: each agent (fw1, fw2, and the
	// witness run as `gwstated --witness`) runs a member in-process.
	EtcdEmbedded
)

func (m EtcdMode) String() string {
	if m == EtcdEmbedded {
		return "embedded"
	}
	return "separate"
}

// ClusterOptions configure StartCluster. Zero values take the defaults.
type ClusterOptions struct {
	Bin        Binaries
	Dir        string // work directory: config, key, state dirs, logs (required)
	Etcd       EtcdMode
	Profile    string // probe profile of every link: default | fast
	Decide     string // cluster.decide (default any)
	OnEtcdLoss string // cluster.on_etcd_loss (default hold)
	// Damping replaces the default flap damping; NoDamping turns it off
	// (penalty 0), for measurements that cut a link many times.
	Damping   *config.Damping
	NoDamping bool
	LogLevel  string // agents' --log-level (default info)
	// Dataplane "nft" runs the agents on the Linux data plane for real
	// (linuxcluster.go); "" writes pf anchors to files (--dry-run).
	Dataplane string
	// Log receives one line per harness action (start, kill, ...); nil
	// discards them.
	Log io.Writer
}

// Node names of the lab cluster.
const (
	FW1     = "fw1"
	FW2     = "fw2"
	Witness = "witness"
)

// Cluster is a running gwstated cluster in a Lab: agents for fw1, fw2 and
// the witness as separate processes, and (EtcdSeparate) three etcd members.
type Cluster struct {
	Lab        *Lab
	ConfigPath string
	KeyPath    string
	Config     *config.Config // as fw1 reads it

	opt   ClusterOptions
	mu    sync.Mutex
	procs map[string]*Process // by name: fw1, fw2, witness, etcd-fw1, ...
	hash  map[string]string   // expected ruleset hash by up set
}

// Process is one program the harness runs in a namespace, its output
// appended to LogPath (over restarts).
type Process struct {
	Name    string
	Role    string // namespace
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid is the process id (of the program itself: `ip netns exec` execs it).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

type tmplNode struct {
	Name, Sync string
	Witness    bool
	Sources    []struct{ Link, Addr string }
}

type tmplLink struct{ Name, Interface, Gateway string }

type tmplData struct {
	Name, Decide, OnEtcdLoss, KeyFile, PFDir, LAN, Internet, Profile, Metrics string
	Embed                                                                     bool
	NFT                                                                       bool   // dataplane: nft (linuxcluster.go)
	TrackFile, VRRPAddress                                                    string // with NFT
	EmbedDataDir                                                              string
	Nodes                                                                     []tmplNode
	Links                                                                     []tmplLink
	Damping                                                                   struct{ Penalty, HalfLife, Suppress, Reuse string }
}

// WriteConfig writes the lab cluster's configuration for l into path
// (from the embedded template cluster.yaml.tmpl) and returns its text.
func WriteConfig(l *Lab, path, keyFile, workDir string, opt ClusterOptions) (string, error) {
	d := tmplData{
		Name: "lab", Decide: opt.Decide, OnEtcdLoss: opt.OnEtcdLoss, KeyFile: keyFile,
		PFDir: filepath.Join(workDir, "pf"), LAN: LANPrefix.String(), Internet: Internet4.String(),
		Profile: opt.Profile, Metrics: "0.0.0.0:9707",
		Embed: opt.Etcd == EtcdEmbedded, EmbedDataDir: filepath.Join(workDir, "etcd"),
	}
	if d.Decide == "" {
		d.Decide = "any"
	}
	if d.OnEtcdLoss == "" {
		d.OnEtcdLoss = "hold"
	}
	if d.Profile == "" {
		d.Profile = config.DefaultProfile
	}
	if opt.Dataplane == DataplaneNFT {
		d.NFT, d.TrackFile, d.VRRPAddress = true, filepath.Join(workDir, "vrrp-track"), LANGateway.String()
	}
	dmp := config.Default().Damping
	if opt.Damping != nil {
		dmp = *opt.Damping
	}
	if opt.NoDamping {
		dmp.Penalty = 0
	}
	d.Damping.Penalty = fmt.Sprint(dmp.Penalty)
	d.Damping.HalfLife = dmp.HalfLife.String()
	d.Damping.Suppress = fmt.Sprint(dmp.Suppress)
	d.Damping.Reuse = fmt.Sprint(dmp.Reuse)
	for _, s := range l.ISPs() {
		d.Links = append(d.Links, tmplLink{Name: s.Name, Interface: l.Uplink(FW1, s.Name).Interface, Gateway: s.Gateway4.String()})
	}
	for _, fw := range []string{FW1, FW2} {
		n := tmplNode{Name: fw, Sync: l.SyncAddr(fw).String()}
		for _, s := range l.ISPs() {
			n.Sources = append(n.Sources, struct{ Link, Addr string }{s.Name, l.Uplink(fw, s.Name).Addr4.String()})
		}
		d.Nodes = append(d.Nodes, n)
	}
	d.Nodes = append(d.Nodes, tmplNode{Name: Witness, Sync: l.SyncAddr(Witness).String(), Witness: true})
	t, err := template.New("cluster.yaml").Parse(clusterTemplate)
	if err != nil {
		return "", fmt.Errorf("lab: config template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return "", fmt.Errorf("lab: config template: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	return buf.String(), nil
}

// StartCluster writes the gossip key (gwctl keygen) and the configuration,
// checks it for every node (gwctl check), starts etcd and the three agents
// and waits until both firewalls have applied the verdict with every link
// up. On error everything started is stopped.
func StartCluster(ctx context.Context, l *Lab, opt ClusterOptions) (*Cluster, error) {
	if opt.Dir == "" {
		return nil, errors.New("lab: ClusterOptions.Dir is required")
	}
	if opt.LogLevel == "" {
		opt.LogLevel = "info"
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	c := &Cluster{
		Lab: l, opt: opt, procs: map[string]*Process{}, hash: map[string]string{},
		ConfigPath: filepath.Join(opt.Dir, "gwstated.yaml"),
		KeyPath:    filepath.Join(opt.Dir, "gossip.key"),
	}
	if err := c.start(ctx); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	if err := run(ctx, c.opt.Bin.Gwctl, "keygen", "--out", c.KeyPath); err != nil {
		return err
	}
	if _, err := WriteConfig(c.Lab, c.ConfigPath, c.KeyPath, c.opt.Dir, c.opt); err != nil {
		return err
	}
	if err := c.writeNodeConfigs(); err != nil {
		return err
	}
	for _, n := range []string{FW1, FW2, Witness} {
		if err := run(ctx, c.opt.Bin.Gwctl, "check", "--config", c.ConfigPath, "--node", n); err != nil {
			return err
		}
	}
	cfg, err := config.Load(c.ConfigPath, FW1)
	if err != nil {
		return err
	}
	c.Config = cfg
	if c.opt.Etcd == EtcdSeparate {
		for _, n := range []string{FW1, FW2, Witness} {
			if err := c.StartEtcd(n); err != nil {
				return err
			}
		}
	}
	// The agents start together: with embedded members, each one waits
	// for a quorum of the others before it serves.
	for _, n := range []string{Witness, FW1, FW2} {
		if err := c.StartAgent(n); err != nil {
			return err
		}
	}
	var up []string
	for _, s := range c.Lab.ISPs() {
		up = append(up, s.Name)
		// Before the probes settle, the links are unknown and all_down: all
		// renders the same rules as every link up: wait for the probes.
		if _, err := c.WaitTransition(ctx, s.Name, "up", 0, 60*time.Second); err != nil {
			return err
		}
	}
	if c.opt.Dataplane == DataplaneNFT {
		return c.WaitApplied(ctx, up, 60*time.Second)
	}
	return c.WaitRules(ctx, up, 60*time.Second)
}

// AppliedAt returns when node last logged "verdict applied" with the
// ruleset hash after since (the agent's clock right after the dir backend wrote the
// anchors; a verdict that changes no anchor is not logged).
func (c *Cluster) AppliedAt(node, hash string, since time.Time) (time.Time, error) {
	recs, err := c.Logs(node)
	if err != nil {
		return time.Time{}, err
	}
	for _, r := range slices.Backward(recs) {
		if h, _ := r.Attrs["hash"].(string); r.Msg == "verdict applied" && h != "" && strings.HasPrefix(hash, h) && r.Time.After(since) {
			return r.Time, nil
		}
	}
	return time.Time{}, fmt.Errorf("lab: %s logged no \"verdict applied\" for hash %.12s after %s", node, hash, since.Format(time.StampMicro))
}

// NodeDir is a node's --state-dir: state.json, anchors/, dry-run.log.
func (c *Cluster) NodeDir(node string) string { return filepath.Join(c.opt.Dir, node) }

// AgentLog is the path of a node's agent log (JSON lines).
func (c *Cluster) AgentLog(node string) string { return filepath.Join(c.opt.Dir, node+".log") }

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.opt.Log, "lab: "+format+"\n", args...)
}

// StartAgent starts (or restarts) node's gwstated in its namespace:
// `gwstated --config F --node N --dry-run --state-dir D --log-format json`,
// plus --witness for the witness.
func (c *Cluster) StartAgent(node string) error {
	args := []string{"--config", c.agentConfig(node), "--node", node,
		"--state-dir", c.NodeDir(node), "--log-format", "json", "--log-level", c.opt.LogLevel}
	if c.opt.Dataplane != DataplaneNFT {
		args = append(args, "--dry-run")
	}
	if node == Witness {
		args = append(args, "--witness")
	}
	return c.startProc(node, node, c.AgentLog(node), c.opt.Bin.Gwstated, args)
}

// StartEtcd starts (or restarts) the separately started etcd member of
// node (EtcdSeparate), in node's namespace on its sync address.
func (c *Cluster) StartEtcd(node string) error {
	var initial []string
	for _, n := range []string{FW1, FW2, Witness} {
		initial = append(initial, fmt.Sprintf("%s=http://%s:2380", n, c.Lab.SyncAddr(n)))
	}
	sync := c.Lab.SyncAddr(node).String()
	args := []string{"--name", node, "--data-dir", filepath.Join(c.opt.Dir, "etcd-"+node),
		"--peer-url", "http://" + sync + ":2380", "--client-url", "http://" + sync + ":2379",
		"--initial-cluster", strings.Join(initial, ",")}
	return c.startProc("etcd-"+node, node, filepath.Join(c.opt.Dir, "etcd-"+node+".log"), c.opt.Bin.Etcd, args)
}

func (c *Cluster) startProc(name, role, logPath, bin string, args []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil && p.Running() {
		return fmt.Errorf("lab: %s is already running (pid %d)", name, p.Pid())
	}
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	cmd := c.Lab.Command(context.Background(), role, bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("lab: start %s: %w", name, err)
	}
	p := &Process{Name: name, Role: role, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	c.procs[name] = p
	// The waiter is owned by p: Kill, Stop and Close wait for p.done.
	go func() {
		_ = cmd.Wait() // its exit status is not used: its output is in LogPath
		f.Close()
		close(p.done)
	}()
	c.logf("started %s in %s (pid %d)", name, role, p.Pid())
	return nil
}

// Proc returns the process named name (fw1, witness, etcd-fw1, ...), or nil.
func (c *Cluster) Proc(name string) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[name]
}

// Kill sends SIGKILL to the process named name and waits for it to exit.
func (c *Cluster) Kill(name string) error { return c.signal(name, syscall.SIGKILL, 0) }

// Stop sends SIGTERM to the process named name and waits for it to exit,
// killing it after timeout.
func (c *Cluster) Stop(name string, timeout time.Duration) error {
	return c.signal(name, syscall.SIGTERM, timeout)
}

func (c *Cluster) signal(name string, sig syscall.Signal, timeout time.Duration) error {
	p := c.Proc(name)
	if p == nil {
		return fmt.Errorf("lab: no process %s", name)
	}
	if !p.Running() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	if timeout > 0 {
		select {
		case <-p.done:
			c.logf("stopped %s (%v)", name, sig)
			return nil
		case <-time.After(timeout):
			_ = p.cmd.Process.Kill()
		}
	}
	<-p.done
	c.logf("killed %s", name)
	return nil
}

// Close stops every process (agents first, with SIGTERM, then etcd) and
// waits for them. The lab itself is left to its owner.
func (c *Cluster) Close() error {
	c.mu.Lock()
	names := make([]string, 0, len(c.procs))
	for n := range c.procs {
		names = append(names, n)
	}
	c.mu.Unlock()
	// agents before etcd, so they resign while etcd is there
	slices.SortFunc(names, func(a, b string) int {
		ea, eb := strings.HasPrefix(a, "etcd-"), strings.HasPrefix(b, "etcd-")
		if ea != eb {
			if ea {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	var errs []error
	for _, n := range names {
		if err := c.Stop(n, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Gwctl runs `gwctl <sub> --config F args...` in the witness namespace
// (where every etcd member is reachable) and returns its standard output.
func (c *Cluster) Gwctl(ctx context.Context, sub string, args ...string) (string, error) {
	flags := []string{sub, "--config", c.ConfigPath}
	cmd := c.Lab.Command(ctx, Witness, c.opt.Bin.Gwctl, append(flags, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("lab: gwctl %s: %w: %s", sub, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// HistoryEntry is one element of `gwctl history --json`.
type HistoryEntry struct {
	cluster.AuditRecord
	Sentence string `json:"sentence"`
}

// History returns the audit log (oldest first, at most the newest 1000).
func (c *Cluster) History(ctx context.Context) ([]HistoryEntry, error) {
	out, err := c.Gwctl(ctx, "history", "--json", "--limit", "1000")
	if err != nil {
		return nil, err
	}
	var h []HistoryEntry
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		return nil, fmt.Errorf("lab: gwctl history --json: %w", err)
	}
	slices.SortFunc(h, func(a, b HistoryEntry) int { return cmp.Compare(a.Seq, b.Seq) })
	return h, nil
}

// Anchor returns the text of a node's anchor as the dir backend wrote it
// ("" when the file does not exist).
func (c *Cluster) Anchor(node, anchor string) (string, error) {
	b, err := os.ReadFile(filepath.Join(c.NodeDir(node), "anchors", anchor+".conf"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}

// Applied returns a node's anchors/applied.json (zero before the first apply).
func (c *Cluster) Applied(node string) (pfapply.AppliedFile, error) {
	var a pfapply.AppliedFile
	b, err := os.ReadFile(filepath.Join(c.NodeDir(node), "anchors", "applied.json"))
	if errors.Is(err, os.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return a, err
	}
	return a, json.Unmarshal(b, &a)
}

// DryRunLog returns a node's dry-run.log lines (commands it would have run,
// e.g. `ifconfig -g carp carpdemote 50`).
func (c *Cluster) DryRunLog(node string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(c.NodeDir(node), "dry-run.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n"), nil
}

// ExpectedHash is the ruleset hash of the verdict in which exactly the
// links in up are up (`gwctl render --up ... --json`).
func (c *Cluster) ExpectedHash(ctx context.Context, up []string) (string, error) {
	key := strings.Join(up, ",")
	c.mu.Lock()
	h, ok := c.hash[key]
	c.mu.Unlock()
	if ok {
		return h, nil
	}
	cmd := exec.CommandContext(ctx, c.opt.Bin.Gwctl, "render", "--config", c.ConfigPath, "--node", FW1, "--up", key, "--json")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("lab: gwctl render --up %q: %w", key, err)
	}
	var r struct {
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.Hash == "" {
		return "", fmt.Errorf("lab: gwctl render --up %q: no hash in %q (%v)", key, out, err)
	}
	c.mu.Lock()
	c.hash[key] = r.Hash
	c.mu.Unlock()
	return r.Hash, nil
}

// pollEvery is how often Wait tests its condition; gwctlPollEvery how
// often WaitTransition runs gwctl (a process and an etcd client each time).
const (
	pollEvery      = 10 * time.Millisecond
	gwctlPollEvery = 100 * time.Millisecond
)

// Wait tests cond every 10 ms until it returns true, returns an error, ctx
// ends or timeout passes; the timeout error names what was awaited and the
// last error cond returned.
func Wait(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	return waitEvery(ctx, pollEvery, timeout, what, cond)
}

// waitEvery is Wait testing cond every interval.
func waitEvery(ctx context.Context, every, timeout time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("lab: %s: not after %s: %w", what, timeout, last)
			}
			return fmt.Errorf("lab: %s: not after %s", what, timeout)
		case <-t.C:
		}
	}
}

// WaitRules waits until both firewalls have applied the ruleset of the
// verdict in which exactly the links in up are up.
func (c *Cluster) WaitRules(ctx context.Context, up []string, timeout time.Duration) error {
	_, err := c.WaitRulesAt(ctx, up, time.Time{}, timeout)
	return err
}

// WaitRulesAt is WaitRules returning, per firewall, when it applied them
// after since
// (AppliedAt: its "verdict applied" log record; file modification times
// are too coarse, a few ms, to measure skew).
func (c *Cluster) WaitRulesAt(ctx context.Context, up []string, since time.Time, timeout time.Duration) (map[string]time.Time, error) {
	want, err := c.ExpectedHash(ctx, up)
	if err != nil {
		return nil, err
	}
	at := map[string]time.Time{}
	err = Wait(ctx, timeout, fmt.Sprintf("both firewalls' anchors for up=%v", up), func() (bool, error) {
		for _, fw := range []string{FW1, FW2} {
			if _, ok := at[fw]; ok {
				continue
			}
			a, err := c.Applied(fw)
			if err != nil {
				return false, err
			}
			if a.Hash != want {
				return false, fmt.Errorf("%s has seq %d hash %.12s, want %.12s", fw, a.Seq, a.Hash, want)
			}
			t, err := c.AppliedAt(fw, a.Hash, since)
			if err != nil {
				return false, err
			}
			at[fw] = t
		}
		return true, nil
	})
	return at, err
}

// WaitConverged waits until both firewalls' applied.json carry the same
// seq and hash and returns them.
func (c *Cluster) WaitConverged(ctx context.Context, timeout time.Duration) (pfapply.AppliedFile, error) {
	var got pfapply.AppliedFile
	err := Wait(ctx, timeout, "both firewalls on the same ruleset", func() (bool, error) {
		a, err := c.Applied(FW1)
		if err != nil {
			return false, err
		}
		b, err := c.Applied(FW2)
		if err != nil {
			return false, err
		}
		if a.Hash == "" || a != b {
			return false, fmt.Errorf("fw1 seq %d hash %.12s, fw2 seq %d hash %.12s", a.Seq, a.Hash, b.Seq, b.Hash)
		}
		got = a
		return true, nil
	})
	return got, err
}

// WaitTransition waits until `gwctl history` holds a transition of link to
// state to (up, down) with a sequence above after, and returns it.
func (c *Cluster) WaitTransition(ctx context.Context, link, to string, after uint64, timeout time.Duration) (HistoryEntry, error) {
	var got HistoryEntry
	// gwctl runs as a process: poll it less often than files.
	err := waitEvery(ctx, gwctlPollEvery, timeout, fmt.Sprintf("a transition of %s to %s in gwctl history", link, to), func() (bool, error) {
		h, err := c.History(ctx)
		if err != nil {
			return false, err
		}
		for _, e := range h {
			if e.Seq > after && e.Kind == cluster.KindTransition && e.Link == link && e.To.String() == to {
				got = e
				return true, nil
			}
		}
		return false, nil
	})
	return got, err
}

// LogRecord is one line of an agent's JSON log: the keys every record of
// interest carries, and all of them in Attrs.
type LogRecord struct {
	Time  time.Time
	Level string
	Msg   string
	Link  string
	State string // "" when the record's state is not a string
	Seq   uint64
	Attrs map[string]any
}

// Logs reads a node's agent log; lines that are not JSON records (a crash
// trace) are skipped.
func (c *Cluster) Logs(node string) ([]LogRecord, error) {
	b, err := os.ReadFile(c.AgentLog(node))
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var out []LogRecord
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		r := LogRecord{Attrs: m}
		str := func(k string) string { s, _ := m[k].(string); return s }
		r.Time, _ = time.Parse(time.RFC3339Nano, str("time"))
		r.Level, r.Msg, r.Link, r.State = str("level"), str("msg"), str("link"), str("state")
		if f, ok := m["seq"].(float64); ok {
			r.Seq = uint64(f)
		}
		out = append(out, r)
	}
	return out, nil
}
