// Command demo is `make demo`: the newcomer's first command. It builds
// gwstated, gwctl and the lab's etcd, starts the two-firewall network
// namespace lab with a cluster on the embedded default configuration, cuts
// isp1, shows the pf anchors change on both firewalls and `gwctl history`
// saying why, restores isp1 and tears everything down (also on Ctrl-C and
// on failure). It needs root, ip (iproute2), nft (nftables) and Go, and
// exits non-zero when an expected step does not happen.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gwstated/lab"
)

func main() {
	os.Exit(run())
}

func run() int {
	verbose := flag.Bool("v", false, "also show the harness's process starts and stops")
	keep := flag.Bool("keep", false, "keep the work directory (config, agent logs, anchors) after the demo")
	flag.Parse()
	if why := lab.Missing(); why != "" {
		fmt.Fprintln(os.Stderr, "demo:", why)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := lab.Sweep(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "demo: removing namespaces of earlier runs:", err)
	}
	fmt.Println("==> Building gwstated, gwctl and the lab's etcd member")
	t0 := time.Now()
	bin, err := lab.CacheBinaries(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	fmt.Printf("    built in %s into %s\n", time.Since(t0).Round(100*time.Millisecond), bin.Gwstated[:len(bin.Gwstated)-len("/gwstated")])
	dir, err := os.MkdirTemp("", "gwstated-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	if *keep {
		fmt.Println("    work directory (kept):", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if err := lab.Demo(ctx, os.Stdout, lab.DemoOptions{Bin: bin, Dir: dir, Verbose: *verbose}); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo FAILED: %v\n", err)
		if !*keep {
			fmt.Fprintln(os.Stderr, "(run with -keep to keep the agents' logs)")
		}
		return 1
	}
	fmt.Println("\ndemo OK")
	return 0
}
