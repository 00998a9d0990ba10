package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/lab"
)

// statusJSON is the part of `gwctl status --json` the checker reads.
type statusJSON struct {
	Verdict *struct {
		Seq    uint64   `json:"seq"`
		Active []string `json:"active"`
	} `json:"verdict"`
	Links []struct {
		Name     string `json:"name"`
		State    string `json:"state"`
		Override string `json:"override"`
	} `json:"links"`
	Nodes []struct {
		Name    string `json:"name"`
		Applied *struct {
			Seq   uint64 `json:"seq"`
			Hash  string `json:"hash"`
			Error string `json:"error"`
		} `json:"applied"`
	} `json:"nodes"`
}

// Report is what a run found.
type Report struct {
	Seed           uint64
	Duration       time.Duration
	Bound          time.Duration
	Faults         map[Kind]int
	InjectErrors   []string
	Violations     []string
	LongestConv    time.Duration
	LongestAfter   string
	Converged      int                   // quiet windows that converged
	RSS            map[string][2]float64 // node -> first-minute, end (kB)
	Goroutines     map[string][2]float64
	Restarted      map[string]bool
	AuditRecords   int
	AuditRetention int
	Lab            string     // linux | dir
	Traffic        *LossCheck // invariant 6 (linux lab)
	TrafficNote    []string   // what the traffic check excused, connections
}

type runner struct {
	ctx        context.Context
	l          *lab.Lab
	c          *lab.Cluster
	w          io.Writer
	start      time.Time
	rep        *Report
	links      []string
	gwctl      string            // gwctl binary
	status     string            // a copy of the config for gwctl status (HUP faults replace the agents' file)
	linux      bool              // the real-traffic lab (nft, keepalived, traffic)
	configs    map[string][]byte // every agent config file -> its text as written
	render     map[string]string // a copy of each firewall's config, for gwctl render
	hashes     map[string]string // node + " " + up set -> rendered hash
	traffic    *trafficState     // linux lab
	trafficBin string
	killed     map[string]bool
	paused     map[string]bool
	linkOK     map[string]time.Time // link -> when its last link fault ended (zero: never faulted)
	linkBad    map[string]bool      // a link fault is active on it
	seen       map[uint64]map[string]string
	seenV      map[string]bool

	// mu guards the fields above between the fault loop and the observer.
	mu sync.Mutex
}

func (r *runner) logf(format string, a ...any) {
	fmt.Fprintf(r.w, "%7.1fs "+format+"\n", append([]any{time.Since(r.start).Seconds()}, a...)...)
}

func (r *runner) violate(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := fmt.Sprintf("%.0fs: ", time.Since(r.start).Seconds()) + fmt.Sprintf(format, a...)
	key := fmt.Sprintf(format, a...)
	if r.seenV[key] {
		return
	}
	r.seenV[key] = true
	r.rep.Violations = append(r.rep.Violations, v)
	r.logf("VIOLATION %s", v)
}

// Options choose a run.
type Options struct {
	Seed     uint64
	Duration time.Duration
	Lab      string // "linux" (default): nft, keepalived, real traffic; "dir": the dir backend
}

func run(ctx context.Context, o Options, w io.Writer) (*Report, error) {
	seed, dur := o.Seed, o.Duration
	linux := o.Lab != "dir"
	if os.Geteuid() != 0 {
		return nil, errors.New("the lab needs root (network namespaces, nft)")
	}
	tmp, err := os.MkdirTemp("", "gwchaos-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// Binaries of this tree, not the shared cache other worktrees build into.
	bins, err := lab.Build(ctx, filepath.Join(tmp, "bin"))
	if err != nil {
		return nil, err
	}
	var trafficBin string
	if linux {
		if why := lab.KeepalivedMissing(); why != "" {
			return nil, errors.New(why)
		}
		if trafficBin, err = lab.BuildTraffic(ctx, filepath.Join(tmp, "bin")); err != nil {
			return nil, err
		}
	}
	if _, err := lab.Sweep(ctx); err != nil {
		fmt.Fprintf(w, "chaos: sweeping namespaces of crashed runs: %v\n", err)
	}
	l, err := lab.New(ctx, lab.Options{})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	dir := filepath.Join(tmp, "work")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	copt := lab.ClusterOptions{Bin: bins, Dir: dir, Etcd: lab.EtcdSeparate, NoDamping: true}
	var c *lab.Cluster
	if linux {
		c, err = lab.StartLinux(ctx, l, lab.LinuxOptions{Cluster: copt, Traffic: trafficBin})
	} else {
		c, err = lab.StartCluster(ctx, l, copt)
	}
	if err != nil {
		return nil, fmt.Errorf("the cluster did not come up (logs in %s, removed on exit): %w", dir, err)
	}
	defer c.Close()
	orig, err := os.ReadFile(c.ConfigPath)
	if err != nil {
		return nil, err
	}
	cfg := c.Config
	p := cfg.Links[0].Probe
	if p.Interval == 0 {
		p = config.Profiles[config.DefaultProfile]
	}
	g := cfg.Gossip()
	bound := Bound(p.Interval, p.Timeout, p.Fall, p.Rise, cfg.Cluster.Etcd.SessionTTL, g.PushPullInterval, cfg.Cluster.Etcd.DialTimeout, 5*time.Second)
	r := &runner{
		ctx: ctx, l: l, c: c, w: w, start: time.Now(),
		gwctl: bins.Gwctl, status: filepath.Join(tmp, "status.yaml"), linux: linux,
		configs: map[string][]byte{}, render: map[string]string{}, hashes: map[string]string{}, trafficBin: trafficBin,
		rep: &Report{Seed: seed, Duration: dur, Bound: bound, Faults: map[Kind]int{}, Lab: map[bool]string{true: "linux", false: "dir"}[linux],
			RSS: map[string][2]float64{}, Goroutines: map[string][2]float64{}, Restarted: map[string]bool{},
			AuditRetention: cfg.Cluster.Etcd.AuditRetention},
		killed: map[string]bool{}, paused: map[string]bool{}, linkOK: map[string]time.Time{}, linkBad: map[string]bool{},
		seen: map[uint64]map[string]string{}, seenV: map[string]bool{},
	}
	for _, s := range l.ISPs() {
		r.links = append(r.links, s.Name)
	}
	if err := os.WriteFile(r.status, orig, 0o600); err != nil {
		return nil, err
	}
	for _, n := range []string{lab.FW1, lab.FW2, lab.Witness} {
		p := c.AgentConfig(n)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		r.configs[p] = b
		if n != lab.Witness {
			r.render[n] = filepath.Join(tmp, "render-"+n+".yaml")
			if err := os.WriteFile(r.render[n], b, 0o600); err != nil {
				return nil, err
			}
		}
	}
	sched := Generate(seed, ScheduleOptions{
		Duration: dur - 10*time.Second, Firewalls: []string{lab.FW1, lab.FW2}, Links: r.links,
		MinFault: 3 * time.Second, MaxFault: 20 * time.Second, Quiet: bound + 5*time.Second, Concurrent: 2,
	})
	fmt.Fprintf(w, "chaos: convergence bound %v (probe %v×%d + %v, 2×session TTL %v, push-pull %v, dial %v, slack 5s)\n",
		bound, p.Interval, max(p.Fall, p.Rise), p.Timeout, cfg.Cluster.Etcd.SessionTTL, g.PushPullInterval, cfg.Cluster.Etcd.DialTimeout)
	if linux {
		fmt.Fprintf(w, "chaos: invariant 6 counts every datagram the %d UDP flows (%d/s each) lose, except in a gap that overlaps (±%v) "+
			"a fault of the flow's own link (cut, loss burst, drain; a one-sided cut only when it hits the carrying firewall), "+
			"a verdict change of that link (from its audit record until %v later, or %v after a stopped, killed or cut-off firewall is back), "+
			"or a move of the LAN gateway (VRRP, polled every 200 ms)\n",
			chaosTraffic.Flows, chaosTraffic.Rate, lossMargin, applyGrace, applyGrace)
	}
	fmt.Fprintf(w, "chaos: %d faults:\n", len(sched))
	for _, f := range sched {
		fmt.Fprintln(w, "  "+f.String())
	}
	// Every rendering the checker compares with, for each firewall, from
	// the config as written (HUP faults replace the files for a while).
	for mask := range 1 << len(r.links) {
		var up []string
		for i, l := range r.links {
			if mask&(1<<i) != 0 {
				up = append(up, l)
			}
		}
		for _, fw := range []string{lab.FW1, lab.FW2} {
			if err := r.renderHash(fw, up); err != nil {
				return nil, err
			}
		}
	}
	if linux {
		if err := r.startTraffic(); err != nil {
			return nil, err
		}
	}
	r.start = time.Now()
	var gw sync.WaitGroup
	gctx, stopGW := context.WithCancel(ctx)
	if linux {
		gw.Go(func() { r.watchGateway(gctx) })
	}
	r.loop(sched, dur)
	stopGW()
	gw.Wait()
	if linux {
		r.finishTraffic()
	}
	r.finish()
	return r.rep, nil
}

// renderHash renders fw's rules with exactly up up (gwctl render --json,
// on the config as written) into r.hashes.
func (r *runner) renderHash(fw string, up []string) error {
	key := strings.Join(up, ",")
	cmd := exec.CommandContext(r.ctx, r.gwctl, "render", "--config", r.render[fw], "--node", fw, "--up", key, "--json")
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("gwctl render --node %s --up %q: %w", fw, key, err)
	}
	var v struct {
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.Hash == "" {
		return fmt.Errorf("gwctl render --node %s --up %q: no hash in %q (%v)", fw, key, out, err)
	}
	r.hashes[fw+" "+key] = v.Hash
	return nil
}

// loop injects and ends faults on schedule and observes every second.
func (r *runner) loop(sched []Fault, dur time.Duration) {
	type ending struct {
		at time.Duration
		f  Fault
	}
	var ends []ending
	next := 0
	lastEnd := time.Duration(-1) // when the last fault ended (-1: none yet)
	convergedSince := true       // converged after the last fault end
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	// The observer reads the cluster every second (gwctl takes a while on
	// a loaded host) while this loop keeps the schedule.
	obs := make(chan Observed, 1)
	octx, cancel := context.WithCancel(r.ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-octx.Done():
				return
			case <-t.C:
			}
			r.checkProcs()
			if o, ok := r.observe(); ok {
				select {
				case obs <- o:
				default:
				}
			}
		}
	})
	for {
		var o Observed
		got := false
		select {
		case <-r.ctx.Done():
			for _, e := range ends {
				r.end(e.f)
			}
			return
		case <-tick.C:
		case o = <-obs:
			got = true
		}
		now := time.Since(r.start)
		for next < len(sched) && sched[next].At <= now {
			f := sched[next]
			next++
			r.begin(f)
			ends = append(ends, ending{f.End(), f})
		}
		slices.SortFunc(ends, func(a, b ending) int { return int(a.at - b.at) })
		for len(ends) > 0 && ends[0].at <= now {
			r.end(ends[0].f)
			ends = ends[1:]
			if len(ends) == 0 {
				lastEnd, convergedSince = now, false
			}
		}
		if now >= dur && len(ends) == 0 {
			// the run is over once the last fault's convergence was
			// checked (or the bound passed without it)
			switch {
			case lastEnd < 0 || convergedSince:
				return
			case now-lastEnd > r.rep.Bound:
				r.violate("not converged %v after the last fault ended (bound %v), at the end of the run", (now - lastEnd).Round(time.Second), r.rep.Bound)
				return
			}
		}
		if !got {
			continue
		}
		if len(ends) > 0 {
			continue // a fault is active: nothing to converge to yet
		}
		if o.Time.Before(r.start.Add(lastEnd)) {
			continue // read before the last fault ended
		}
		if lastEnd < 0 || convergedSince {
			continue
		}
		why := Converged(o)
		took := now - lastEnd
		switch {
		case why == "":
			took = o.Time.Sub(r.start) - lastEnd
			convergedSince = true
			r.rep.Converged++
			if took > r.rep.LongestConv {
				r.rep.LongestConv = took
				r.rep.LongestAfter = r.lastFaults(sched, lastEnd)
			}
			r.logf("converged %.1fs after the last fault ended", took.Seconds())
		case took > r.rep.Bound:
			r.violate("not converged %v after the faults ended (bound %v): %s", took.Round(time.Second), r.rep.Bound, why)
			convergedSince = true
		}
	}
}

func (r *runner) lastFaults(sched []Fault, end time.Duration) string {
	var ks []string
	for _, f := range sched {
		if f.End() <= end && f.End() > end-30*time.Second {
			ks = append(ks, string(f.Kind))
		}
	}
	return strings.Join(ks, "+")
}

func (r *runner) sighup(nodes ...string) {
	for _, n := range nodes {
		if p := r.c.Proc(n); p != nil && p.Running() && !r.killed[n] {
			_ = syscall.Kill(p.Pid(), syscall.SIGHUP)
		}
	}
}

// writeConfig replaces every agent's config file with edit(its text as
// written); edit nil restores them.
func (r *runner) writeConfig(edit func([]byte) []byte) error {
	for p, orig := range r.configs {
		b := orig
		if edit != nil {
			b = edit(slices.Clone(orig))
		}
		if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
			return err
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return err
		}
	}
	return nil
}

var needLine = regexp.MustCompile(`(?m)^(\s+)need: 1$`)

func (r *runner) begin(f Fault) {
	r.mu.Lock()
	r.rep.Faults[f.Kind]++
	switch f.Kind {
	case AgentKill:
		r.killed[f.Node] = true
	case AgentStop:
		r.paused[f.Node] = true
	case EtcdKill:
		r.killed["etcd-"+f.Node] = true
	case CutBoth, LossBurst:
		r.linkBad[f.Link] = true
	}
	r.mu.Unlock()
	r.noteBegin(f)
	r.logf("start %s", f)
	ctx := r.ctx
	var err error
	switch f.Kind {
	case CutBoth:
		err = r.l.Cut(ctx, f.Link)
	case CutOne:
		err = r.l.AddFault(ctx, f.Link, lab.Fault{Loss: 100, Peers: r.l.FirewallPeers(f.Node, f.Link)})
	case LossBurst:
		err = r.l.Loss(ctx, f.Link, f.Loss)
	case AgentKill:
		err = r.c.Kill(f.Node)
	case AgentStop:
		err = syscall.Kill(r.c.Proc(f.Node).Pid(), syscall.SIGSTOP)
	case EtcdKill:
		err = r.c.Kill("etcd-" + f.Node)
	case SyncSplit:
		err = r.l.AddFault(ctx, lab.FW1, lab.Fault{Loss: 100, Interface: "sync0", Peers: []netip.Addr{r.l.SyncAddr(lab.FW2)}})
	case SyncIsolate:
		err = r.l.AddFault(ctx, f.Node, lab.Fault{Loss: 100, Interface: "sync0"})
	case HupInterval:
		if err = r.writeConfig(func(b []byte) []byte { return needLine.ReplaceAll(b, []byte("${1}need: 1\n${1}interval: 150ms")) }); err == nil {
			r.sighup(lab.FW1, lab.FW2, lab.Witness)
		}
	case HupInvalid:
		if err = r.writeConfig(func(b []byte) []byte { return append(b, []byte("\nlinks: [ {name: \"fxp0; reboot\"\n")...) }); err == nil {
			r.sighup(lab.FW1, lab.FW2, lab.Witness)
		}
	case DrainUndrain:
		_, err = r.c.Gwctl(ctx, "drain", "--reason", "chaos", "--wait", "0", f.Link)
	}
	if err != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.rep.InjectErrors = append(r.rep.InjectErrors, fmt.Sprintf("%s: %v", f, err))
		r.logf("could not inject %s: %v", f, err)
	}
}

func (r *runner) end(f Fault) {
	r.logf("end   %s", f)
	ctx := context.WithoutCancel(r.ctx)
	var err error
	switch f.Kind {
	case CutBoth, CutOne, LossBurst:
		err = r.l.Restore(ctx, f.Link)
	case AgentKill:
		err = r.c.StartAgent(f.Node)
		r.mu.Lock()
		r.rep.Restarted[f.Node] = true
		delete(r.killed, f.Node)
		r.mu.Unlock()
	case AgentStop:
		err = syscall.Kill(r.c.Proc(f.Node).Pid(), syscall.SIGCONT)
		r.mu.Lock()
		delete(r.paused, f.Node)
		r.mu.Unlock()
	case EtcdKill:
		err = r.c.StartEtcd(f.Node)
		r.mu.Lock()
		delete(r.killed, "etcd-"+f.Node)
		r.mu.Unlock()
	case SyncSplit:
		err = r.l.Clear(ctx, lab.FW1)
	case SyncIsolate:
		err = r.l.Clear(ctx, f.Node)
	case HupInterval, HupInvalid:
		if err = r.writeConfig(nil); err == nil {
			r.sighup(lab.FW1, lab.FW2, lab.Witness)
		}
	case DrainUndrain:
		_, err = r.c.Gwctl(ctx, "undrain", "--reason", "chaos over", "--wait", "0", f.Link)
	}
	r.noteEnd(f)
	r.mu.Lock()
	defer r.mu.Unlock()
	if f.Kind == CutBoth || f.Kind == LossBurst {
		delete(r.linkBad, f.Link)
		r.linkOK[f.Link] = time.Now()
	}
	if err != nil {
		r.rep.InjectErrors = append(r.rep.InjectErrors, fmt.Sprintf("end %s: %v", f, err))
		r.logf("could not end %s: %v", f, err)
	}
}

// observe reads the verdict (gwctl status) and every alive firewall's
// applied rules, checks "never all dropped", and returns the reading for
// the convergence check; ok is false when the status could not be read.
func (r *runner) observe() (Observed, bool) {
	o := Observed{Time: time.Now(), Applied: map[string]string{}}
	cmd := r.l.Command(r.ctx, lab.Witness, r.gwctl, "status", "--config", r.status, "--json", "--timeout", "3s")
	var outb, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &errb
	err := cmd.Run() // exit 1: degraded, the JSON is there
	out := outb.String()
	var st statusJSON
	if jerr := json.Unmarshal([]byte(out), &st); jerr != nil || st.Verdict == nil {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
		if r.ctx.Err() == nil {
			r.logf("status unreadable: %v", errors.Join(err, jerr))
		}
		return o, false
	}
	o.VerdictSeq, o.Active = st.Verdict.Seq, st.Verdict.Active
	states := map[string]string{}
	for _, l := range st.Links {
		states[l.Name] = l.State
		if l.State == "up" {
			o.Up = append(o.Up, l.Name)
		}
		if l.Override == "drain" {
			o.Drained = append(o.Drained, l.Name)
		}
	}
	o.Expected = map[string]string{}
	for _, fw := range []string{lab.FW1, lab.FW2} {
		h, ok := r.hashes[fw+" "+strings.Join(o.Up, ",")]
		if !ok {
			return o, false
		}
		o.Expected[fw] = h
	}
	r.mu.Lock()
	if _, ok := r.seen[o.VerdictSeq]; !ok {
		r.seen[o.VerdictSeq] = states
	}
	for _, l := range r.links {
		if !r.linkBad[l] {
			o.Working = append(o.Working, l)
		}
	}
	for _, fw := range []string{lab.FW1, lab.FW2} {
		if r.killed[fw] || r.paused[fw] {
			continue
		}
		if r.linux {
			// the nft data plane's rules are in the kernel: its
			// applied/<node> record (gwctl status) says what it applied
			for _, n := range st.Nodes {
				if n.Name == fw && n.Applied != nil {
					o.Applied[fw] = n.Applied.Hash
					if n.Applied.Error != "" {
						o.Applied[fw] = "error: " + n.Applied.Error
					}
				}
			}
			continue
		}
		a, err := r.c.Applied(fw)
		if err == nil {
			o.Applied[fw] = a.Hash
		}
	}
	var stable []string
	for _, l := range r.links {
		if !r.linkBad[l] && time.Since(r.linkOK[l]) > r.rep.Bound {
			stable = append(stable, l)
		}
	}
	r.mu.Unlock()
	if why := AllDropped(o, stable); why != "" {
		r.violate("%s", why)
	}
	r.sample()
	return o, true
}

// checkProcs: no agent or etcd member exits unless the schedule killed it.
func (r *runner) checkProcs() {
	names := []string{lab.FW1, lab.FW2, lab.Witness, "etcd-fw1", "etcd-fw2", "etcd-witness"}
	if r.linux {
		names = append(names, "keepalived-fw1", "keepalived-fw2", "traffic-client")
		for _, l := range r.links {
			names = append(names, "traffic-"+l)
		}
	}
	for _, n := range names {
		p := r.c.Proc(n)
		r.mu.Lock()
		killed := r.killed[n]
		r.mu.Unlock()
		if p != nil && !p.Running() && !killed {
			r.violate("%s exited without being killed (log %s)", n, p.LogPath)
		}
	}
}

// sample records RSS and goroutines of each agent process: the first
// sample after it is a minute old, and the latest.
func (r *runner) sample() {
	if time.Since(r.start) < time.Minute {
		return
	}
	for _, n := range []string{lab.FW1, lab.FW2, lab.Witness} {
		p := r.c.Proc(n)
		r.mu.Lock()
		skip := r.killed[n] || r.paused[n] || r.rep.Restarted[n] // a restarted process has no first minute to compare with
		r.mu.Unlock()
		if p == nil || !p.Running() || skip {
			continue
		}
		rss := procRSS(p.Pid())
		gor := r.goroutines(n)
		if rss == 0 || gor == 0 {
			continue // not read (the metrics request timed out on a loaded host): keep the last reading
		}
		r.mu.Lock()
		old, has := r.rep.RSS[n]
		if !has {
			r.rep.RSS[n] = [2]float64{rss, rss}
			r.rep.Goroutines[n] = [2]float64{gor, gor}
		} else {
			r.rep.RSS[n] = [2]float64{old[0], rss}
			og := r.rep.Goroutines[n]
			r.rep.Goroutines[n] = [2]float64{og[0], gor}
		}
		r.mu.Unlock()
	}
}

func procRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// goroutines reads go_goroutines from the agent's metrics endpoint, inside
// its namespace (python3: the lab already needs it).
func (r *runner) goroutines(node string) float64 {
	ctx, cancel := context.WithTimeout(r.ctx, 3*time.Second)
	defer cancel()
	cmd := r.l.Command(ctx, node, "python3", "-c",
		fmt.Sprintf("import urllib.request;print(urllib.request.urlopen('http://%s:9707/metrics',timeout=2).read().decode())", r.l.SyncAddr(node)))
	var out bytes.Buffer
	cmd.Stdout = &out
	if cmd.Run() != nil {
		return 0
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "go_goroutines ") {
			v, _ := strconv.ParseFloat(strings.TrimPrefix(line, "go_goroutines "), 64)
			return v
		}
	}
	return 0
}

// finish checks the audit log and resource growth.
func (r *runner) finish() {
	ctx := context.WithoutCancel(r.ctx)
	h, err := r.c.History(ctx)
	if err != nil {
		r.violate("audit log unreadable: %v", err)
	} else {
		recs := make([]cluster.AuditRecord, len(h))
		for i := range h {
			recs[i] = h[i].AuditRecord
		}
		r.rep.AuditRecords = len(recs)
		for _, p := range AuditProblems(recs, r.seen) {
			r.violate("audit: %s", p)
		}
		if ret := r.rep.AuditRetention; ret > 0 && len(recs) > ret {
			r.violate("audit log holds %d records, retention is %d", len(recs), ret)
		}
	}
	for _, n := range sortedKeys(r.rep.RSS) {
		if why := Growth(n+" RSS kB", r.rep.RSS[n][0], r.rep.RSS[n][1], 1.5); why != "" {
			r.violate("%s", why)
		}
		if why := Growth(n+" goroutines", r.rep.Goroutines[n][0], r.rep.Goroutines[n][1], 1.5); why != "" {
			r.violate("%s", why)
		}
	}
}

// Markdown is the summary table.
func (rep *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Chaos run: %s lab, seed %d, %v, convergence bound %v\n\n", rep.Lab, rep.Seed, rep.Duration, rep.Bound)
	b.WriteString("| fault kind | injected |\n|---|---|\n")
	total := 0
	for _, k := range Kinds {
		fmt.Fprintf(&b, "| %s | %d |\n", k, rep.Faults[k])
		total += rep.Faults[k]
	}
	fmt.Fprintf(&b, "| **total** | %d |\n\n", total)
	fmt.Fprintf(&b, "| measure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| invariant violations | %d |\n", len(rep.Violations))
	fmt.Fprintf(&b, "| injection errors | %d |\n", len(rep.InjectErrors))
	fmt.Fprintf(&b, "| quiet windows converged | %d |\n", rep.Converged)
	fmt.Fprintf(&b, "| longest convergence after the last fault ended | %v (after %s) |\n", rep.LongestConv.Round(100*time.Millisecond), rep.LongestAfter)
	fmt.Fprintf(&b, "| audit records (retention %d) | %d |\n", rep.AuditRetention, rep.AuditRecords)
	for _, n := range sortedKeys(rep.RSS) {
		fmt.Fprintf(&b, "| %s RSS kB at 1 min → end | %.0f → %.0f |\n", n, rep.RSS[n][0], rep.RSS[n][1])
		fmt.Fprintf(&b, "| %s goroutines at 1 min → end | %.0f → %.0f |\n", n, rep.Goroutines[n][0], rep.Goroutines[n][1])
	}
	for _, n := range sortedKeys(rep.Restarted) {
		fmt.Fprintf(&b, "| %s | restarted by the schedule: no growth figure |\n", n)
	}
	if t := rep.Traffic; t != nil {
		fmt.Fprintf(&b, "| inv. 6: UDP flows without a counted loss | %d of %d |\n", t.FlowsClean, t.Flows)
		fmt.Fprintf(&b, "| inv. 6: datagrams sent / lost | %d / %d |\n", t.Sent, t.Lost)
		for _, k := range sortedKeys(t.LostExcused) {
			fmt.Fprintf(&b, "| inv. 6: lost, excused by %s | %d in %d gaps |\n", k, t.LostExcused[k], t.GapsExcused[k])
		}
		fmt.Fprintf(&b, "| inv. 6: lost on a link that stayed up (violations) | %d |\n", t.LostCounted)
	}
	for _, n := range rep.TrafficNote {
		fmt.Fprintf(&b, "| note | %s |\n", n)
	}
	if len(rep.Violations) > 0 {
		b.WriteString("\nViolations:\n")
		for _, v := range rep.Violations {
			b.WriteString("- " + v + "\n")
		}
	}
	if len(rep.InjectErrors) > 0 {
		b.WriteString("\nInjection errors:\n")
		for _, v := range rep.InjectErrors {
			b.WriteString("- " + v + "\n")
		}
	}
	return b.String()
}
