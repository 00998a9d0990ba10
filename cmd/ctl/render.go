package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"

	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/pfapply"
)

func init() {
	register(&command{
		name:    "render",
		args:    "--config FILE --up LINKS [--json] [--node NAME]",
		summary: "show the pf anchors and default route for a set of up links, offline",
		help: `Render shows exactly what every node would load into pf, and which default
route it would set, if the links named by --up were up and every other
configured link down. No cluster, etcd or pf is needed: use it to review a
configuration before deploying it, or to see what a failure will do.

--up takes a comma-separated list of link names from the configuration;
--up "" means every link is down. The verdict is made by the same decision
code the agents run (linkstate.Decide) from one alive node seeing those
links up and the others down, so tiers and all_down apply as in the
cluster: only the lowest tier with an up link is balanced, and with no
link up all_down decides (all: every link, fail-open; none: empty anchors;
keep: the previous verdict's links, which render has not got, so every
link). Overrides and flap damping play no part.

The text output starts with the verdict, then lists every anchor gwstated
owns in load order, each under a header line "anchor NAME:" with its rules
indented ("(empty)" when the anchor must be empty), then the default route
("none" when no link is in use) and the ruleset hash that nodes report.

--json prints one object instead:
  {"anchors": {"NAME": "RULES", ...}, "default_route": "IP or empty",
   "hash": "HEX"}

With dataplane: nft (Linux) render shows the nft table exactly as
"nft list table inet NAME" will print it, then the ip routes and ip rules
(as ip(8) arguments) and the main default route; --json prints
  {"nft": "TABLE", "routes": ["default via GW dev IF table T", ...],
   "rules": ["priority P fwmark M lookup T", ...],
   "default_route": "IP or empty", "hash": "HEX"}
Rules from the node's probe_source addresses depend on --node and are not
in the hash.

Exit status: 0 rendered, 1 the configuration is invalid or does not
render, 2 usage error (including an unknown link name).

Examples:
  gwctl render --config /etc/gwstated.yaml --up isp2
  gwctl render --config /etc/gwstated.yaml --up isp1,isp2 --json`,
		flags: func(fs *flag.FlagSet) func(ctx context.Context, std *stdio, args []string) int {
			path := fs.String("config", "", "gwstated configuration `file` (required)")
			up := fs.String("up", "", "comma-separated `links` that are up; every other link is down (required; \"\" for none)")
			node := fs.String("node", "", "read the configuration as node `name` (default: the file's node key, else the host name)")
			asJSON := fs.Bool("json", false, "print JSON: {\"anchors\": {...}, \"default_route\": ..., \"hash\": ...}")
			return func(ctx context.Context, std *stdio, args []string) int {
				if len(args) > 0 {
					fmt.Fprintf(std.err, "gwctl render: unexpected argument %q\n", args[0])
					return exitUsage
				}
				upSet := false
				fs.Visit(func(f *flag.Flag) { upSet = upSet || f.Name == "up" })
				if *path == "" || !upSet {
					fmt.Fprintln(std.err, "gwctl render: --config FILE and --up LINKS are required (--up \"\" for all links down)")
					return exitUsage
				}
				return runRender(std, *path, *node, *up, *asJSON)
			}
		},
	})
}

func runRender(std *stdio, path, node, upFlag string, asJSON bool) int {
	cfg, err := config.Load(path, node, config.Offline())
	if err != nil {
		printErrorLines(std, path, err)
		return exitFail
	}
	configured := allLinkNames(cfg)
	var up, unknown []string
	for name := range strings.SplitSeq(upFlag, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case !slices.Contains(configured, name):
			unknown = append(unknown, name)
		case !slices.Contains(up, name):
			up = append(up, name)
		}
	}
	if len(unknown) > 0 {
		fmt.Fprintf(std.err, "gwctl render: --up: unknown link %s (configured: %s)\n",
			strings.Join(unknown, ", "), strings.Join(configured, ", "))
		return exitUsage
	}
	v := cfg.VerdictUp(up, std.now())
	if cfg.Dataplane == config.DataplaneNFT {
		return runRenderNFT(std, path, cfg, v, asJSON) // render_nft.go
	}
	rs, err := pfapply.Render(cfg, v)
	if err != nil {
		printErrorLines(std, path, err)
		return exitFail
	}
	if asJSON {
		return printRenderJSON(std, rs)
	}
	printRenderText(std, cfg, v, rs)
	return exitOK
}

func printRenderText(std *stdio, cfg *config.Config, v linkstate.Verdict, rs pfapply.Ruleset) {
	printVerdictLine(std, cfg, v)
	fmt.Fprintln(std.out)
	for _, a := range rs.Anchors {
		fmt.Fprintf(std.out, "\nanchor %s:\n", a.Name)
		if a.Rules == "" {
			fmt.Fprintln(std.out, "    (empty)")
			continue
		}
		for line := range strings.SplitSeq(strings.TrimSuffix(a.Rules, "\n"), "\n") {
			fmt.Fprintf(std.out, "    %s\n", line)
		}
	}
	route := "none"
	if rs.DefaultRoute.IsValid() {
		route = rs.DefaultRoute.String()
	}
	fmt.Fprintf(std.out, "\ndefault route: %s\nhash: %s\n", route, rs.Hash)
}

// renderJSON is the --json form, as docs/DESIGN.md's CLI contract gives it.
type renderJSON struct {
	Anchors      map[string]string `json:"anchors"`
	DefaultRoute string            `json:"default_route"`
	Hash         string            `json:"hash"`
}

func printRenderJSON(std *stdio, rs pfapply.Ruleset) int {
	out := renderJSON{Anchors: make(map[string]string, len(rs.Anchors)), Hash: rs.Hash}
	for _, a := range rs.Anchors {
		out.Anchors[a.Name] = a.Rules
	}
	if rs.DefaultRoute.IsValid() {
		out.DefaultRoute = rs.DefaultRoute.String()
	}
	return writeJSON(std, out)
}

// writeJSON writes render --json's object, indented, with <, > and &
// as they are (they occur in rules).
func writeJSON(std *stdio, out any) int {
	enc := json.NewEncoder(std.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(std.err, "gwctl render: %v\n", err)
		return exitFail
	}
	return exitOK
}

// printVerdictLine writes "verdict: isp1 up, isp2 down; active: isp1 (why)"
// without the newline: the first line of render's text for pf and nft.
func printVerdictLine(std *stdio, cfg *config.Config, v linkstate.Verdict) {
	var states []string
	for _, l := range cfg.Links {
		states = append(states, l.Name+" "+v.Links[l.Name].State.String())
	}
	active := "none"
	if len(v.Active) > 0 {
		active = strings.Join(v.Active, ", ")
	}
	fmt.Fprintf(std.out, "verdict: %s; active: %s", strings.Join(states, ", "), active)
	if v.ActiveReason != "" {
		fmt.Fprintf(std.out, " (%s)", v.ActiveReason)
	}
}
