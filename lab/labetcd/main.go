// Command labetcd runs one etcd member as its own process: the lab's
// "separately started etcd" (the variant where gwstated is only an etcd
// client). It is the same etcd server code (go.etcd.io/etcd/server/v3) the
// agents embed, started with the few flags the lab needs, so the lab needs no
// etcd package from the distribution. It runs until SIGINT or SIGTERM; the
// lab kills it with SIGKILL to lose a member.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("labetcd", flag.ContinueOnError)
	name := fs.String("name", "", "member `name`")
	dir := fs.String("data-dir", "", "data `dir`ectory")
	peer := fs.String("peer-url", "", "peer `URL` to listen on and advertise")
	client := fs.String("client-url", "", "client `URL` to listen on and advertise")
	initial := fs.String("initial-cluster", "", "`name=peerURL,...` of every member")
	token := fs.String("token", "gwlab", "initial cluster token")
	tick := fs.Uint("tick-ms", 50, "raft heartbeat interval in ms")
	election := fs.Uint("election-ms", 500, "raft election timeout in ms")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *name == "" || *dir == "" || *peer == "" || *client == "" || *initial == "" {
		fmt.Fprintln(os.Stderr, "labetcd: --name, --data-dir, --peer-url, --client-url and --initial-cluster are required")
		return 2
	}
	pu, err := url.Parse(*peer)
	if err != nil {
		fmt.Fprintf(os.Stderr, "labetcd: --peer-url: %v\n", err)
		return 2
	}
	cu, err := url.Parse(*client)
	if err != nil {
		fmt.Fprintf(os.Stderr, "labetcd: --client-url: %v\n", err)
		return 2
	}
	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dir
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.InitialCluster = *initial
	cfg.InitialClusterToken = *token
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.TickMs = *tick
	cfg.ElectionMs = *election
	cfg.PreVote = true
	cfg.UnsafeNoFsync = true // lab data in a temporary directory
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.Metrics = "basic"

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "labetcd: %s: %v\n", *name, err)
		return 1
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "labetcd: %s ready on %s (peers %s)\n", *name, *client, strings.ReplaceAll(*initial, ",", " "))
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "labetcd: %s: %v\n", *name, err)
		return 1
	case <-ctx.Done():
		return 0
	}
	select {
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "labetcd: %s: %v\n", *name, err)
		return 1
	case <-ctx.Done():
		return 0
	}
}
