// Command gwstated is the gwstated agent: it runs on every firewall of a
// CARP pair (and on an etcd witness), probes every uplink, agrees with the
// other nodes on one verdict per link and applies the same pf anchor rules
// on every node. See gwstated(8) and gwstated.yaml(5).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"gwstated/agent"
	"gwstated/config"
)

var version = "dev"

const usageText = `usage: gwstated [--config FILE] [--node NAME] [--witness] [--dry-run]
                [--state-dir DIR] [--log-format text|json] [--log-level LEVEL]
       gwstated --check [--config FILE] [--node NAME]
       gwstated --version

gwstated is the multi-WAN failover agent for CARP-paired OpenBSD pf
firewalls. Every node probes every uplink, gossips what it sees, takes part
in the etcd leader election, and applies the cluster's verdict to the pf
anchors named in the config (pfctl, checked with pfctl -n before any load,
replaced without flushing, in an order that never leaves a packet without a
rule).

At start it applies the last verdict it knows (its state file, then etcd)
before its probes have settled; it never starts from "all down".

Signals:
  SIGHUP           read the config again; an invalid config is refused and
                   the agent keeps running on the old one
  SIGTERM, SIGINT  resign leadership, leave gossip and exit, leaving pf as it is

Exit status: 0 after a clean shutdown, 1 on a runtime error, 2 on a usage or
configuration error.

flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// labToolsFlag is the hidden flag of the lab's OpenBSD emulator.
const labToolsFlag = "lab-pf-tools"

// printDefaults is fs.PrintDefaults without the hidden lab flag.
func printDefaults(fs *flag.FlagSet) {
	hidden := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	hidden.SetOutput(fs.Output())
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != labToolsFlag {
			hidden.Var(f.Value, f.Name, f.Usage)
		}
	})
	hidden.PrintDefaults()
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("gwstated", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfgPath   = fs.String("config", "/etc/gwstated.yaml", "the cluster config `FILE` (gwstated.yaml(5))")
		node      = fs.String("node", "", "this node's `NAME` in the config's nodes: (default: the config's node:, else the host name)")
		witness   = fs.Bool("witness", false, "run as an etcd witness: embedded etcd member and gossip only, no probes, no pf")
		dryRun    = fs.Bool("dry-run", false, "do not touch pf: write the anchors into --state-dir/anchors (the dir backend) and log commands instead of running them")
		stateDir  = fs.String("state-dir", "/var/db/gwstated", "`DIR` for the local state file (the last applied verdict) and --dry-run output")
		logFormat = fs.String("log-format", "text", "log format: text or json")
		logLevel  = fs.String("log-level", "info", "log level: debug, info, warn or error")
		check     = fs.Bool("check", false, "check the config and exit (0 valid, 2 invalid)")
		showVer   = fs.Bool("version", false, "print the version and exit")
		// Hidden (not in --help): the lab runs the pfctl backend against
		// its OpenBSD emulator, a directory holding pfctl, route and
		// ifconfig (lab/pfemu); see lab/doc.go.
		labTools = fs.String(labToolsFlag, "", "lab only: `DIR` holding the pfctl, route and ifconfig to run instead of /sbin's; pf rule files go to DIR/rules instead of pf.dir")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		printDefaults(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gwstated: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *showVer {
		fmt.Fprintln(os.Stdout, "gwstated", version)
		return 0
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "gwstated: %v\n", err)
		return 2
	}
	if *check {
		if _, err := config.Load(*cfgPath, *node); err != nil {
			fmt.Fprintf(stderr, "gwstated: %v\n", err)
			return 2
		}
		fmt.Fprintln(os.Stdout, "ok")
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	done := make(chan struct{})
	// The forwarder turns SIGHUPs into reloads until run returns: close(done)
	// ends it, then wg.Wait waits for it (defers run in reverse).
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	wg.Go(func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			case <-done:
				return
			}
		}
	})

	var tools agent.Tools
	if *labTools != "" {
		tools = agent.Tools{Pfctl: filepath.Join(*labTools, "pfctl"), Route: filepath.Join(*labTools, "route"),
			Ifconfig: filepath.Join(*labTools, "ifconfig"), RulesDir: filepath.Join(*labTools, "rules")}
	}
	err = agent.Run(ctx, agent.Options{
		ConfigPath: *cfgPath, Node: *node, Witness: *witness, DryRun: *dryRun,
		StateDir: *stateDir, Version: version, Log: log, Reload: reload, Tools: tools,
	})
	switch {
	case errors.Is(err, agent.ErrConfig):
		log.Error("cannot start", "err", err)
		return 2
	case err != nil:
		log.Error("stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
