package etcdmember

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"gwstated/config"
)

// startTimeout bounds how long Start waits for the member to
// join its cluster; joining needs a quorum of the initial members up.
const startTimeout = 60 * time.Second

// Member is an etcd member running inside the agent (cluster.etcd.embed).
type Member struct {
	etcd *embed.Etcd
	log  *slog.Logger
}

// Start starts this node's etcd member as cluster.etcd.embed and
// nodes.<node>.etcd say and waits until it has joined the cluster (which
// needs a quorum of initial_cluster up: start the members together). The
// caller closes it after the Node has stopped.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Member, error) {
	e := cfg.Embed()
	if e == nil {
		return nil, errors.New("cluster.etcd.embed: not configured")
	}
	name := cfg.Node
	peer, err := parseURL(e.PeerURL, "nodes."+name+".etcd.peer_url")
	if err != nil {
		return nil, err
	}
	client, err := parseURL(e.ClientURL, "nodes."+name+".etcd.client_url")
	if err != nil {
		return nil, err
	}
	if e.DataDir == "" {
		return nil, errors.New("cluster.etcd.embed.data_dir: empty")
	}
	if _, ok := e.InitialCluster[name]; !ok {
		return nil, fmt.Errorf("cluster.etcd.embed.initial_cluster: no member %q (this node)", name)
	}
	names := make([]string, 0, len(e.InitialCluster))
	for n := range e.InitialCluster {
		names = append(names, n)
	}
	slices.Sort(names)
	var initial []string
	for _, n := range names {
		initial = append(initial, n+"="+e.InitialCluster[n])
	}
	ec := embed.NewConfig()
	ec.Name = name
	ec.Dir = e.DataDir
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	ec.InitialCluster = strings.Join(initial, ",")
	ec.InitialClusterToken = "gwstated-" + cfg.Cluster.Name
	ec.ClusterState = embed.ClusterStateFlagNew
	if e.ClusterState == embed.ClusterStateFlagExisting {
		ec.ClusterState = embed.ClusterStateFlagExisting
	}
	ec.PreVote = true
	// A LAN cluster of three: 100 ms heartbeats, 1 s election timeout
	// (etcd's defaults), leases no shorter than session_ttl allows.
	ec.Logger = "zap"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	if t := cfg.Cluster.Etcd.TLS; t.Cert != "" {
		ti := transport.TLSInfo{CertFile: t.Cert, KeyFile: t.Key, TrustedCAFile: t.CA, ClientCertAuth: t.CA != ""}
		ec.ClientTLSInfo, ec.PeerTLSInfo = ti, ti
	}
	s, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd member %s (peer %s, client %s): %w", name, peer, client, err)
	}
	select {
	case <-s.Server.ReadyNotify():
	case err := <-s.Err():
		s.Close()
		return nil, fmt.Errorf("embedded etcd member %s: %w", name, err)
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	case <-time.After(startTimeout):
		s.Close()
		return nil, fmt.Errorf("embedded etcd member %s: not ready after %s; are a quorum of %v up?", name, startTimeout, names)
	}
	log.Info("embedded etcd member ready", "node", name, "peer", peer.String(), "client", client.String(), "members", names)
	return &Member{etcd: s, log: log}, nil
}

// Err reports a fatal error of the running member.
func (e *Member) Err() <-chan error { return e.etcd.Err() }

// Close stops the member; its data stays in data_dir.
func (e *Member) Close() {
	e.etcd.Close()
	e.log.Info("embedded etcd member stopped")
}

func parseURL(s, field string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("%s: empty", field)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: %q is not an http(s)://host:port URL", field, s)
	}
	return u, nil
}
