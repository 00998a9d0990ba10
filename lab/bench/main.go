// Command bench is `make lab-bench`: gwstated's failover figures in the
// network-namespace lab, against the ifstated recipe's method measured in
// the same lab. It prints a table; it is a measurement, not a test.
//
// For each probe profile (default, fast) it cuts isp1 -cuts times (a hard
// drop in isp1's gateway namespace, at a random phase) and measures:
//
//	failover   cut → both firewalls' applied.json carry the rules without isp1
//	skew       |fw1's apply − fw2's apply| for the same verdict
//	recovery   restore → both firewalls carry the rules with isp1 again
//	overhead   the decisive probe (the later of the two firewalls' last
//	           change of their probe view to down,
//	           gwstated_link_observed_change_timestamp_seconds: with
//	           decide: any the link is down only when both see it down) →
//	           each firewall's applied.json
//
// Apply times are applied_at of the agents' applied.json (the dir
// backend's clock right after it wrote the anchors; file mtimes are too
// coarse). Flap damping is off (damping.penalty: 0) so
// that repeated cuts are not held down. Then a soak: 10% random loss on
// both links for -soak, counting transitions (false failovers).
//
// The baseline is the recipe's method: a loop in fw1's namespace running
// `ping -c 1 -w 1 <isp1 gateway>` every 10 s, flipping its state on one
// result; measured over the same cuts, and run during the soak too.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"gwstated/cluster"
	"gwstated/lab"
)

type options struct {
	keep      bool // keep the traffic lab's work directory
	cuts      int
	soak      time.Duration
	profiles  []string
	baseline  bool
	verbose   bool
	soakProfs []string
	// real traffic (traffic.go)
	traffic     bool
	trafficCuts int
	handovers   int
}

func main() {
	var o options
	var profiles, soakProfiles string
	flag.IntVar(&o.cuts, "cuts", 20, "cuts per profile (and for the baseline)")
	flag.DurationVar(&o.soak, "soak", 5*time.Minute, "duration of the 10% loss soak per profile (0 skips it)")
	flag.StringVar(&profiles, "profiles", "default,fast", "probe profiles to measure")
	flag.StringVar(&soakProfiles, "soak-profiles", "default,fast", "probe profiles to soak")
	flag.BoolVar(&o.baseline, "baseline", true, "measure the ifstated recipe's method too")
	flag.BoolVar(&o.verbose, "v", false, "narrate every cut")
	flag.BoolVar(&o.keep, "keep", false, "keep the traffic lab's work directory (logs, ip monitor records)")
	flag.BoolVar(&o.traffic, "traffic", true, "measure real traffic through the Linux pair (traffic.go)")
	flag.IntVar(&o.trafficCuts, "traffic-cuts", 20, "cut/restore cycles of isp1 with traffic, per method")
	flag.IntVar(&o.handovers, "handovers", 5, "impaired-master handovers with traffic, per method")
	flag.Parse()
	o.profiles = split(profiles)
	o.soakProfs = split(soakProfiles)
	if why := lab.Missing(); why != "" {
		fmt.Fprintln(os.Stderr, "lab-bench:", why)
		os.Exit(2)
	}
	if _, err := exec.LookPath("ping"); o.baseline && err != nil {
		fmt.Fprintln(os.Stderr, "lab-bench: the baseline needs ping (apt-get install iputils-ping), or -baseline=false")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "lab-bench:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// column is one measured method.
type column struct {
	name                                  string
	failover, skew, recovery, overhead    []time.Duration
	soak                                  time.Duration
	falseFailovers, soakApplies, targetDn int
	soaked                                bool
}

func run(ctx context.Context, o options) error {
	if _, err := lab.Sweep(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "lab-bench: sweep:", err)
	}
	bin, err := lab.CacheBinaries(ctx)
	if err != nil {
		return err
	}
	var cols []*column
	log := io.Discard
	if o.verbose {
		log = os.Stderr
	}
	for _, p := range o.profiles {
		col := &column{name: "gwstated " + p}
		if err := measureProfile(ctx, bin, p, o, col, log); err != nil {
			return fmt.Errorf("profile %s: %w", p, err)
		}
		cols = append(cols, col)
	}
	var base *column
	if o.baseline {
		base = &column{name: "ifstated recipe"}
		if err := measureBaseline(ctx, o, base, log); err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
	}
	if o.soak > 0 {
		for _, p := range o.soakProfs {
			col := findCol(cols, "gwstated "+p)
			if col == nil {
				col = &column{name: "gwstated " + p}
				cols = append(cols, col)
			}
			if err := soak(ctx, bin, p, o, col, base, log); err != nil {
				return fmt.Errorf("soak %s: %w", p, err)
			}
		}
	}
	if base != nil {
		cols = append(cols, base)
	}
	var tcols []*trafficColumn
	if o.traffic {
		if tcols, err = measureTraffic(ctx, bin, o, log); err != nil {
			return fmt.Errorf("traffic: %w", err)
		}
	}
	printTable(os.Stdout, o, cols)
	if len(tcols) > 0 {
		fmt.Println()
		printTrafficTable(os.Stdout, o, tcols)
		printBreakdown(os.Stdout, tcols)
	}
	return nil
}

func findCol(cols []*column, name string) *column {
	for _, c := range cols {
		if c.name == name {
			return c
		}
	}
	return nil
}

// setup builds a lab and a cluster with profile; the returned func tears
// both down.
func setup(ctx context.Context, bin lab.Binaries, profile string, log io.Writer) (*lab.Cluster, func(), error) {
	l, err := lab.New(ctx, lab.Options{})
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "gwstated-bench-")
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	c, err := lab.StartCluster(ctx, l, lab.ClusterOptions{Bin: bin, Dir: dir, Profile: profile, NoDamping: true, Log: log})
	if err != nil {
		l.Close()
		fmt.Fprintln(os.Stderr, "lab-bench: logs kept in", dir)
		return nil, nil, err
	}
	return c, func() {
		c.Close()
		l.Close()
		os.RemoveAll(dir)
	}, nil
}

// pause waits d or until ctx ends: pacing between cuts, not synchronisation.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func measureProfile(ctx context.Context, bin lab.Binaries, profile string, o options, col *column, log io.Writer) error {
	c, done, err := setup(ctx, bin, profile, log)
	if err != nil {
		return err
	}
	defer done()
	both := []string{"isp1", "isp2"}
	// let the probe windows fill with answers before the first cut
	if err := pause(ctx, 3*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "lab-bench: %s: %d cuts\n", profile, o.cuts)
	for i := range o.cuts {
		if err := pause(ctx, time.Duration(rand.Int64N(int64(time.Second)))+time.Second); err != nil {
			return err
		}
		cut := time.Now()
		if err := c.Lab.Cut(ctx, "isp1"); err != nil {
			return err
		}
		at, err := c.WaitRulesAt(ctx, []string{"isp2"}, cut, 30*time.Second)
		if err != nil {
			return fmt.Errorf("cut %d: %w", i, err)
		}
		last := later(at[lab.FW1], at[lab.FW2])
		col.failover = append(col.failover, last.Sub(cut))
		col.skew = append(col.skew, abs(at[lab.FW1].Sub(at[lab.FW2])))
		decisive, err := decisiveProbe(ctx, c, "isp1", cut)
		if err != nil {
			return fmt.Errorf("cut %d: %w", i, err)
		}
		col.overhead = append(col.overhead, last.Sub(decisive))
		if err := pause(ctx, time.Duration(rand.Int64N(int64(time.Second)))+500*time.Millisecond); err != nil {
			return err
		}
		restore := time.Now()
		if err := c.Lab.Restore(ctx, "isp1"); err != nil {
			return err
		}
		at, err = c.WaitRulesAt(ctx, both, restore, 60*time.Second)
		if err != nil {
			return fmt.Errorf("restore %d: %w", i, err)
		}
		col.recovery = append(col.recovery, later(at[lab.FW1], at[lab.FW2]).Sub(restore))
		if o.verbose {
			fmt.Fprintf(os.Stderr, "  %s cut %2d: failover %v skew %v overhead %v recovery %v\n", profile, i,
				col.failover[i].Round(time.Millisecond), col.skew[i].Round(time.Microsecond),
				col.overhead[i].Round(time.Microsecond), col.recovery[i].Round(time.Millisecond))
		}
	}
	return nil
}

// decisiveProbe is the time of the observation that decided the link's
// new state (down) after since: with decide: any, the later of the
// firewalls' changes of their probe view to down, read from /metrics
// (gwstated_link_observed_state and
// gwstated_link_observed_change_timestamp_seconds).
func decisiveProbe(ctx context.Context, c *lab.Cluster, link string, since time.Time) (time.Time, error) {
	var last time.Time
	for _, fw := range []string{lab.FW1, lab.FW2} {
		m, err := c.Metrics(ctx, fw)
		if err != nil {
			return time.Time{}, err
		}
		sel := `{link="` + link + `"}`
		at := lab.UnixSeconds(m["gwstated_link_observed_change_timestamp_seconds"+sel])
		if st, ok := m["gwstated_link_observed_state"+sel]; !ok || st != 0 || !at.After(since) {
			return time.Time{}, fmt.Errorf("%s: probe view of %s is %v since %s, want down (0) since after %s", fw, link, st,
				at.Format(time.StampMicro), since.Format(time.StampMicro))
		}
		last = later(last, at)
	}
	return last, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// recipe is the ifstated recipe's check: `ping -q -c 1 -w 1 <gw>` every 10
// s in a firewall's namespace; one result sets the state.
type recipe struct {
	l    *lab.Lab
	fw   string
	gw   string
	mu   sync.Mutex
	up   bool
	flip []flip
	// onFlip, when set, is called (from the loop) after each flip: the
	// Linux variant flips the data plane's rules there (traffic.go).
	onFlip func(ctx context.Context, up bool)
}

type flip struct {
	at time.Time
	up bool
}

func (r *recipe) run(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		err := r.l.Command(ctx, r.fw, "ping", "-q", "-c", "1", "-w", "1", r.gw).Run()
		if ctx.Err() != nil {
			return
		}
		up := err == nil
		r.mu.Lock()
		flipped := up != r.up
		if flipped {
			r.up = up
			r.flip = append(r.flip, flip{time.Now(), up})
		}
		r.mu.Unlock()
		if flipped && r.onFlip != nil {
			r.onFlip(ctx, up)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waitState waits for a flip to up after since and returns its time.
func (r *recipe) waitState(ctx context.Context, up bool, since time.Time) (time.Time, error) {
	var at time.Time
	err := lab.Wait(ctx, 30*time.Second, fmt.Sprintf("the recipe's state up=%v", up), func() (bool, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, f := range r.flip {
			if f.up == up && f.at.After(since) {
				at = f.at
				return true, nil
			}
		}
		return false, nil
	})
	return at, err
}

func (r *recipe) flips(since time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.flip {
		if f.at.After(since) {
			n++
		}
	}
	return n
}

// startRecipe runs the recipe's loop in fw1 until the returned stop is called.
func startRecipe(ctx context.Context, l *lab.Lab) (*recipe, func()) {
	s, _ := l.ISP("isp1")
	r := &recipe{l: l, fw: lab.FW1, gw: s.Gateway4.String()}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.run(rctx) })
	return r, func() { cancel(); wg.Wait() }
}

func measureBaseline(ctx context.Context, o options, col *column, log io.Writer) error {
	l, err := lab.New(ctx, lab.Options{})
	if err != nil {
		return err
	}
	defer l.Close()
	r, stop := startRecipe(ctx, l)
	defer stop()
	if _, err := r.waitState(ctx, true, time.Time{}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "lab-bench: ifstated recipe: %d cuts (ping every 10 s: this takes a while)\n", o.cuts)
	for i := range o.cuts {
		if err := pause(ctx, time.Duration(rand.Int64N(int64(10*time.Second)))); err != nil {
			return err
		}
		cut := time.Now()
		if err := l.Cut(ctx, "isp1"); err != nil {
			return err
		}
		at, err := r.waitState(ctx, false, cut)
		if err != nil {
			return fmt.Errorf("cut %d: %w", i, err)
		}
		col.failover = append(col.failover, at.Sub(cut))
		restore := time.Now()
		if err := l.Restore(ctx, "isp1"); err != nil {
			return err
		}
		at, err = r.waitState(ctx, true, restore)
		if err != nil {
			return fmt.Errorf("restore %d: %w", i, err)
		}
		col.recovery = append(col.recovery, at.Sub(restore))
		if o.verbose {
			fmt.Fprintf(os.Stderr, "  recipe cut %2d: failover %v recovery %v\n", i, col.failover[i].Round(time.Millisecond), col.recovery[i].Round(time.Millisecond))
		}
	}
	return nil
}

// soak runs 10% random loss on both links for o.soak and counts
// transitions: every one is a false failover. The recipe's loop runs in the
// same lab and is counted the same way.
func soak(ctx context.Context, bin lab.Binaries, profile string, o options, col, base *column, log io.Writer) error {
	c, done, err := setup(ctx, bin, profile, log)
	if err != nil {
		return err
	}
	defer done()
	var r *recipe
	if base != nil {
		var stop func()
		r, stop = startRecipe(ctx, c.Lab)
		defer stop()
		if _, err := r.waitState(ctx, true, time.Time{}); err != nil {
			return err
		}
	}
	h, err := c.History(ctx)
	if err != nil {
		return err
	}
	var seq uint64
	if len(h) > 0 {
		seq = h[len(h)-1].Seq
	}
	a0, err := c.Applied(lab.FW1)
	if err != nil {
		return err
	}
	targetDowns := func() (float64, error) {
		var sum float64
		for _, fw := range []string{lab.FW1, lab.FW2} {
			n, err := c.MetricSum(ctx, fw, "gwstated_probe_target_transitions_total", `to="down"`)
			if err != nil {
				return 0, err
			}
			sum += n
		}
		return sum, nil
	}
	downs0, err := targetDowns()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "lab-bench: %s: 10%% loss soak for %s\n", profile, o.soak)
	start := time.Now()
	for _, isp := range []string{"isp1", "isp2"} {
		if err := c.Lab.Loss(ctx, isp, 10); err != nil {
			return err
		}
	}
	if err := pause(ctx, o.soak); err != nil {
		return err
	}
	for _, isp := range []string{"isp1", "isp2"} {
		if err := c.Lab.Restore(ctx, isp); err != nil {
			return err
		}
	}
	h, err = c.History(ctx)
	if err != nil {
		return err
	}
	for _, e := range h {
		if e.Seq > seq && e.Kind == cluster.KindTransition && e.Time.After(start) {
			col.falseFailovers++
			if o.verbose {
				fmt.Fprintln(os.Stderr, "  false transition:", e.Sentence)
			}
		}
	}
	a1, err := c.Applied(lab.FW1)
	if err != nil {
		return err
	}
	col.soakApplies = int(a1.Seq - a0.Seq)
	downs, err := targetDowns()
	if err != nil {
		return err
	}
	col.targetDn = int(downs - downs0)
	col.soak, col.soaked = o.soak, true
	if r != nil {
		base.soak, base.soaked = o.soak, true
		base.falseFailovers += r.flips(start) // each flip (down or back up) counts
	}
	return nil
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.SortFunc(s, cmp.Compare)
	// nearest rank
	i := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func fmtD(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func printTable(w io.Writer, o options, cols []*column) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "metric (p50 / p99 over %d cuts)\t", o.cuts)
	for _, c := range cols {
		fmt.Fprintf(tw, "%s\t", c.name)
	}
	fmt.Fprintln(tw, "goal\t")
	row := func(name, goal string, get func(*column) []time.Duration) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, c := range cols {
			ds := get(c)
			if len(ds) == 0 {
				fmt.Fprint(tw, "-\t")
				continue
			}
			fmt.Fprintf(tw, "%s / %s\t", fmtD(pct(ds, 50)), fmtD(pct(ds, 99)))
		}
		fmt.Fprintf(tw, "%s\t\n", goal)
	}
	row("failover (cut → both anchors)", "fast p99 ≤ 1s", func(c *column) []time.Duration { return c.failover })
	row("apply skew fw1 ↔ fw2", "p99 ≤ 50ms", func(c *column) []time.Duration { return c.skew })
	row("recovery (restore → both anchors)", "", func(c *column) []time.Duration { return c.recovery })
	row("pipeline overhead (probe → anchors)", "p99 ≤ 100ms", func(c *column) []time.Duration { return c.overhead })
	fmt.Fprintf(tw, "false failovers, 10%% loss soak\t")
	for _, c := range cols {
		if !c.soaked {
			fmt.Fprint(tw, "-\t")
			continue
		}
		extra := ""
		if c.name != "ifstated recipe" {
			extra = fmt.Sprintf(" (%d target downs)", c.targetDn)
		}
		fmt.Fprintf(tw, "%d in %s%s\t", c.falseFailovers, c.soak, extra)
	}
	fmt.Fprintln(tw, "0\t")
	tw.Flush()
	base := findCol(cols, "ifstated recipe")
	if base == nil || len(base.failover) == 0 {
		return
	}
	fmt.Fprintln(w)
	for _, c := range cols {
		if c == base || len(c.failover) == 0 {
			continue
		}
		fmt.Fprintf(w, "failover: %s is %.1f× faster than the recipe at p50, %.1f× at p99\n", c.name,
			float64(pct(base.failover, 50))/float64(pct(c.failover, 50)),
			float64(pct(base.failover, 99))/float64(pct(c.failover, 99)))
	}
}
