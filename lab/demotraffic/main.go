// Command demotraffic is `make demo-traffic`: the Linux lab with real
// traffic. gwstated runs `dataplane: nft` on two firewall namespaces,
// keepalived holds the LAN gateway, and a client on the LAN sends UDP
// streams and TCP connections to a server behind both ISPs while isp1 is
// cut and restored; it prints what the client saw. It needs root, ip,
// nft, keepalived, conntrack and Go, and exits non-zero when the traffic
// does not behave as the scenarios require.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"gwstated/lab"
)

func main() { os.Exit(run()) }

func run() int {
	verbose := flag.Bool("v", false, "also show the harness's process starts and stops")
	keep := flag.Bool("keep", false, "keep the work directory (configs, logs, traffic reports)")
	flag.Parse()
	why := lab.Missing()
	if why == "" {
		why = lab.KeepalivedMissing()
	}
	if why != "" {
		fmt.Fprintln(os.Stderr, "demo-traffic:", why)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := lab.Sweep(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "demo-traffic: removing namespaces of earlier runs:", err)
	}
	fmt.Println("==> Building gwstated, gwctl, the lab's etcd member and the traffic tool")
	t0 := time.Now()
	bin, err := lab.CacheBinaries(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-traffic:", err)
		return 1
	}
	tr, err := lab.BuildTraffic(ctx, filepath.Dir(bin.Gwstated))
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-traffic:", err)
		return 1
	}
	fmt.Printf("    built in %s into %s\n", time.Since(t0).Round(100*time.Millisecond), filepath.Dir(bin.Gwstated))
	dir, err := os.MkdirTemp("", "gwstated-demo-traffic-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-traffic:", err)
		return 1
	}
	if *keep {
		fmt.Println("    work directory (kept):", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if err := lab.DemoTraffic(ctx, os.Stdout, lab.DemoTrafficOptions{Bin: bin, Traffic: tr, Dir: dir, Verbose: *verbose}); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo-traffic FAILED: %v\n", err)
		if !*keep {
			fmt.Fprintln(os.Stderr, "(run with -keep to keep the logs)")
		}
		return 1
	}
	fmt.Println("\ndemo-traffic OK")
	return 0
}
