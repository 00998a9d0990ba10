package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Kind is one kind of fault the schedule injects.
type Kind string

const (
	CutBoth      Kind = "cut-both"     // an ISP gateway drops everything: both firewalls see it
	CutOne       Kind = "cut-one"      // one firewall's uplink to an ISP drops everything
	LossBurst    Kind = "loss"         // 10–60 % loss at an ISP gateway
	AgentKill    Kind = "agent-kill"   // SIGKILL an agent, restart it when the fault ends
	AgentStop    Kind = "agent-stop"   // SIGSTOP an agent, SIGCONT when the fault ends
	EtcdKill     Kind = "etcd-kill"    // kill an etcd member, restart it when the fault ends
	SyncSplit    Kind = "sync-split"   // fw1 and fw2 cannot talk on the sync segment; the witness can reach both
	SyncIsolate  Kind = "sync-isolate" // a firewall cannot reach anyone on the sync segment (witness included)
	HupInterval  Kind = "hup-interval" // config with another probe interval, SIGHUP to both firewalls; restored at the end
	HupInvalid   Kind = "hup-invalid"  // an invalid config, SIGHUP to both firewalls; restored at the end
	DrainUndrain Kind = "drain"        // gwctl drain a link; undrain when the fault ends
)

// Kinds is every fault kind, in the order reports list them.
var Kinds = []Kind{CutBoth, CutOne, LossBurst, AgentKill, AgentStop, EtcdKill, SyncSplit, SyncIsolate, HupInterval, HupInvalid, DrainUndrain}

// Fault is one scheduled fault: it starts At (from the run's start) and
// ends At+Dur.
type Fault struct {
	At     time.Duration
	Dur    time.Duration
	Kind   Kind
	Node   string // fw1 | fw2 (firewall faults); "" otherwise
	Link   string // isp1 | isp2 (link faults, drain); "" otherwise
	Loss   int    // LossBurst: percent
	Target string // the resource it holds, so that two faults never hold one at once
}

func (f Fault) End() time.Duration { return f.At + f.Dur }

func (f Fault) String() string {
	s := fmt.Sprintf("%7.1fs +%4.1fs %-12s", f.At.Seconds(), f.Dur.Seconds(), f.Kind)
	if f.Node != "" {
		s += " " + f.Node
	}
	if f.Link != "" {
		s += " " + f.Link
	}
	if f.Loss != 0 {
		s += fmt.Sprintf(" %d%%", f.Loss)
	}
	return s
}

// ScheduleOptions shape a schedule.
type ScheduleOptions struct {
	Duration   time.Duration // total run, faults end before it
	Firewalls  []string
	Links      []string
	MinFault   time.Duration // a fault lasts MinFault..MaxFault
	MaxFault   time.Duration
	Quiet      time.Duration // after a fault ends, nothing new starts for this long in a while (see Generate)
	Concurrent int           // faults active at once, at most
}

// Generate returns a seeded random fault schedule, sorted by start. The
// same seed and options give the same schedule. Faults overlap (up to
// Concurrent at once) but never hold the same target (one link, one
// agent, one etcd member, the sync segment, the config file) at once; at
// most one firewall agent is down or stopped at a time, so the invariants
// have a firewall to check. Every fourth fault is followed by Quiet with
// nothing active, so convergence is checked after combinations too. Kinds
// come in rounds: each round injects every kind once, in a random order.
func Generate(seed uint64, o ScheduleOptions) []Fault {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []Fault
	t := 5 * time.Second
	n := 0
	var deck []Kind
	for {
		// Kinds are dealt from a shuffled deck, every kind once per round,
		// so a run of len(Kinds) faults or more injects every kind (a
		// plain random pick left sync-split out of a 34-fault run).
		if len(deck) == 0 {
			deck = slices.Clone(Kinds)
			r.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
		}
		k := deck[0]
		deck = deck[1:]
		f := Fault{Kind: k, Dur: o.MinFault + time.Duration(r.Int64N(int64(o.MaxFault-o.MinFault)+1))}
		f.Dur = f.Dur.Round(100 * time.Millisecond)
		fw := o.Firewalls[r.IntN(len(o.Firewalls))]
		link := o.Links[r.IntN(len(o.Links))]
		switch k {
		case CutBoth:
			f.Link, f.Target = link, "link:"+link
		case CutOne:
			f.Node, f.Link, f.Target = fw, link, "link:"+link
		case LossBurst:
			f.Link, f.Loss, f.Target = link, 10+r.IntN(51), "link:"+link
		case AgentKill, AgentStop:
			f.Node, f.Target = fw, "agent"
		case EtcdKill:
			f.Node, f.Target = fw, "etcd:"+fw
		case SyncSplit, SyncIsolate:
			f.Target = "sync"
			if k == SyncIsolate {
				f.Node = fw
			}
		case HupInterval, HupInvalid:
			f.Target = "config"
		case DrainUndrain:
			f.Link, f.Target = link, "config" // gwctl reads the config file: not while a HUP fault replaced it
		}
		// Start at t, or later until the target is free and fewer than
		// Concurrent faults are active.
		start := t
		for {
			busy := 0
			free := true
			for _, g := range out {
				if g.At < start+f.Dur && start < g.End() {
					busy++
					if g.Target == f.Target {
						free = false
					}
				}
			}
			if free && busy < o.Concurrent {
				break
			}
			start += time.Second
		}
		f.At = start
		if f.End() > o.Duration {
			break
		}
		out = append(out, f)
		n++
		if n%4 == 0 {
			last := time.Duration(0)
			for _, g := range out {
				last = max(last, g.End())
			}
			t = last + o.Quiet
		} else {
			t = start + time.Duration(r.Int64N(int64(f.Dur)+1)).Round(100*time.Millisecond)
		}
	}
	slices.SortStableFunc(out, func(a, b Fault) int { return int(a.At - b.At) })
	return out
}

// QuietWindows returns the windows of the schedule where no fault is active,
// each at least min long: where the convergence invariant is checked.
func QuietWindows(s []Fault, total, min time.Duration) [][2]time.Duration {
	var out [][2]time.Duration
	end := time.Duration(0) // latest end of the faults seen so far
	for _, f := range s {
		if f.At > end && f.At-end >= min {
			out = append(out, [2]time.Duration{end, f.At})
		}
		end = max(end, f.End())
	}
	if total-end >= min {
		out = append(out, [2]time.Duration{end, total})
	}
	return out
}
