package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"gwstated/config"
	"gwstated/nftapply"
	"gwstated/pfapply"
)

func init() {
	register(&command{
		name:    "check",
		args:    "--config FILE [--node NAME] [--print-defaults]",
		summary: "validate a configuration file, offline",
		help: `Check reads a gwstated configuration file exactly as the agent would,
validates every value and renders the pf anchors for the verdict "every
link up", so that a configuration which would produce invalid pf rules
does not pass. No cluster, etcd or pf is needed.

On success check prints "ok" and a one-line summary (cluster, node, links)
and exits 0. Otherwise it prints every error it found, one per line, each
naming the field and the bad value (for example
links[1].gateway: "x" is not an IP address), and exits 1.

The node is chosen as the agent chooses it: --node, else the file's
"node:" key, else the host name; it selects the nodes.NAME overrides
(probe sources, gossip bind, embedded etcd URLs). Check each node's view
of a shared file with --node. Unlike the agent, check runs anywhere: a host
name that is not in nodes is no error (the summary says so), but a node
named by --node or node: must be there.

--print-defaults prints the effective configuration instead (after the
same checks), with every default filled in, as YAML that is itself a
valid configuration file; node: is left out, since the node is chosen
where the file is read.

Exit status: 0 valid, 1 invalid, 2 usage error.

Example:
  gwctl check --config /etc/gwstated.yaml --node fw2`,
		flags: func(fs *flag.FlagSet) func(ctx context.Context, std *stdio, args []string) int {
			path := fs.String("config", "", "gwstated configuration `file` to check (required)")
			node := fs.String("node", "", "check as node `name` (default: the file's node key, else the host name)")
			printDefaults := fs.Bool("print-defaults", false, "print the effective configuration with defaults filled in")
			return func(ctx context.Context, std *stdio, args []string) int {
				if len(args) > 0 {
					fmt.Fprintf(std.err, "gwctl check: unexpected argument %q\n", args[0])
					return exitUsage
				}
				if *path == "" {
					fmt.Fprintln(std.err, "gwctl check: --config FILE is required")
					return exitUsage
				}
				return runCheck(std, *path, *node, *printDefaults)
			}
		},
	})
}

func runCheck(std *stdio, path, node string, printDefaults bool) int {
	cfg, err := config.Load(path, node, config.Offline())
	if err == nil {
		err = checkRenders(cfg, std.now())
	}
	if err != nil {
		printErrorLines(std, path, err)
		return exitFail
	}
	if printDefaults {
		out, err := config.Marshal(cfg)
		if err != nil {
			fmt.Fprintf(std.err, "gwctl check: %v\n", err)
			return exitFail
		}
		std.out.Write(out)
		return exitOK
	}
	names := allLinkNames(cfg)
	links := "links"
	if len(names) == 1 {
		links = "link"
	}
	nodeNote := ""
	if _, ok := cfg.Nodes[cfg.Node]; !ok {
		nodeNote = " (not in nodes: no per-node settings)"
	}
	fmt.Fprintln(std.out, "ok")
	plane := "pf syntax " + cfg.PF.Syntax
	if cfg.Dataplane == config.DataplaneNFT {
		plane = "dataplane nft, table inet " + cfg.NFT.Table
	}
	fmt.Fprintf(std.out, "cluster %s, node %s%s, %d %s (%s), %s\n", cfg.Cluster.Name, cfg.Node, nodeNote,
		len(names), links, strings.Join(names, ", "), plane)
	return exitOK
}

// checkRenders renders the pf anchors for "every link up", the verdict that
// writes every link's rules and every sticky class: a configuration that
// cannot be written as pf rules does not pass check.
func checkRenders(cfg *config.Config, now time.Time) error {
	v := cfg.VerdictUp(allLinkNames(cfg), now)
	if cfg.Dataplane == config.DataplaneNFT {
		_, err := nftapply.Render(cfg, v)
		return err
	}
	_, err := pfapply.Render(cfg, v)
	return err
}

// printErrorLines prints every error of err on its own line: each problem
// of a *config.ValidationError prefixed with the file, else err's lines
// (errors.Join separates errors by newlines).
func printErrorLines(std *stdio, path string, err error) {
	if ve, ok := errors.AsType[*config.ValidationError](err); ok {
		for _, p := range ve.Problems {
			fmt.Fprintf(std.err, "%s: %s\n", path, p)
		}
		return
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if strings.TrimSpace(line) != "" {
			fmt.Fprintln(std.err, line)
		}
	}
}

func allLinkNames(cfg *config.Config) []string {
	names := make([]string, len(cfg.Links))
	for i, l := range cfg.Links {
		names[i] = l.Name
	}
	return names
}
