package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"gwstated/cluster"
	"gwstated/config"
)

// defaultTimeout bounds connecting to etcd and every request gwctl makes.
const defaultTimeout = 5 * time.Second

// connHelp is the paragraph every cluster subcommand's help text carries.
const connHelp = `Connecting: with --config FILE gwctl reads the cluster name, the etcd
endpoints, TLS files and username/password_file from the gwstated
configuration (the same file the agents run with). Without a file, give
--endpoints URL[,URL...] and --cluster NAME; --endpoints and --cluster also
override the file's values. --timeout bounds connecting and each request;
when no endpoint answers within it, gwctl names the endpoints and the
timeout and exits with status 2.`

// connFlags are the connection flags of every subcommand that talks to etcd.
type connFlags struct {
	config    string
	endpoints string
	cluster   string
	timeout   time.Duration
}

// addConnFlags declares --config, --endpoints, --cluster and --timeout on fs.
func addConnFlags(fs *flag.FlagSet) *connFlags {
	f := &connFlags{}
	fs.StringVar(&f.config, "config", "", "gwstated configuration `file` (etcd endpoints, TLS, auth, cluster name)")
	fs.StringVar(&f.endpoints, "endpoints", "", "etcd client `urls`, comma separated (override the configuration's)")
	fs.StringVar(&f.cluster, "cluster", "", "cluster `name` (etcd prefix /gwstated/NAME/; overrides the configuration's)")
	fs.DurationVar(&f.timeout, "timeout", defaultTimeout, "bound on connecting to etcd and on each request")
	return f
}

// conn is an open connection to one cluster's records in etcd.
type conn struct {
	cli       *clientv3.Client
	keys      cluster.Keys
	name      string         // cluster name
	cfg       *config.Config // nil when connected with --endpoints alone
	endpoints []string
	timeout   time.Duration
}

// open connects as the flags say. An error wraps cluster.ErrEtcdUnreachable
// when no endpoint answered; otherwise the flags or the configuration are
// wrong and the error says which.
func (f *connFlags) open(ctx context.Context) (*conn, error) {
	if f.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %s: must be positive", f.timeout)
	}
	c := &conn{timeout: f.timeout}
	var etcdCfg config.Etcd
	if f.config != "" {
		cfg, err := config.Load(f.config, "", config.Offline())
		if err != nil {
			return nil, err
		}
		c.cfg = cfg
		c.name = cfg.Cluster.Name
		etcdCfg = cfg.Cluster.Etcd
		// With embedded members and no endpoints, dial every node's
		// client URL (nodes.<n>.etcd.client_url).
		etcdCfg.Endpoints = cfg.EtcdEndpoints()
	}
	if f.endpoints != "" {
		etcdCfg.Endpoints = nil
		etcdCfg.Embed = nil
		for ep := range strings.SplitSeq(f.endpoints, ",") {
			if ep = strings.TrimSpace(ep); ep != "" {
				etcdCfg.Endpoints = append(etcdCfg.Endpoints, ep)
			}
		}
	}
	if f.cluster != "" {
		c.name = f.cluster
	}
	if c.name == "" {
		return nil, errors.New("no cluster name: give --config FILE or --cluster NAME")
	}
	if !validName(c.name) {
		return nil, fmt.Errorf("cluster name %q: want lower-case letters, digits, '-' and '_'", c.name)
	}
	c.endpoints = cluster.Endpoints(etcdCfg)
	if len(c.endpoints) == 0 {
		return nil, errors.New("no etcd endpoint: give --config FILE or --endpoints URL[,URL...]")
	}
	etcdCfg.DialTimeout = f.timeout
	cli, err := cluster.NewClient(ctx, etcdCfg, nil)
	if err != nil {
		if errors.Is(err, cluster.ErrEtcdUnreachable) {
			return nil, fmt.Errorf("%w: no answer from %s within --timeout %s", cluster.ErrEtcdUnreachable,
				strings.Join(c.endpoints, ", "), f.timeout)
		}
		return nil, err
	}
	c.cli = cli
	c.keys = cluster.NewKeys(c.name)
	return c, nil
}

// Close closes the etcd client.
func (c *conn) Close() error { return c.cli.Close() }

// request returns a context for one etcd request, bounded by --timeout.
// The request requires an etcd leader: a member cut off from the leader
// while the others keep their quorum (a split of the sync segment) keeps
// answering on its client port, but would hold a linearizable read until
// the timeout; with the requirement it refuses at once ("no leader",
// Unavailable) and the client retries a read on the next endpoint. gwctl
// retries what the client does not (transactions, the drain/undrain
// writes included: a refused one was never proposed) with retryNoLeader,
// until --timeout.
func (c *conn) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(clientv3.WithRequireLeader(ctx), c.timeout)
}

// retryNoLeader runs read until it gets an answer other than "no leader"
// or ctx ends. The etcd client retries a Get that a leaderless member
// refused on the next endpoint itself, but not a transaction (read-only
// ones included): gwctl does, every 25 ms, each attempt going to the next
// endpoint of the client's round robin. A refusal changed nothing, so
// trying again is safe.
func retryNoLeader[T any](ctx context.Context, read func(context.Context) (T, error)) (T, error) {
	for {
		v, err := read(ctx)
		if !errors.Is(err, rpctypes.ErrNoLeader) {
			return v, err
		}
		t := time.NewTimer(25 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
	}
}

// memberRequest is request for a question one member answers about
// itself without a leader (Status of an endpoint): no leader required.
func (c *conn) memberRequest(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// watch watches every key under the cluster's prefix from revision rev
// until ctx ends or the returned function is called. The watch requires an
// etcd leader, so that a member cut off from its cluster ends it instead of
// staying silent.
func (c *conn) watch(ctx context.Context, rev int64) (clientv3.WatchChan, context.CancelFunc) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	return c.cli.Watch(wctx, c.keys.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev)), cancel
}

// requestErr words a failed request: a timeout names the endpoints and the
// timeout and wraps cluster.ErrEtcdUnreachable.
func (c *conn) requestErr(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: no answer from %s within --timeout %s", cluster.ErrEtcdUnreachable, what,
			strings.Join(c.endpoints, ", "), c.timeout)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// store is the cluster's etcd layout on this connection: every record
// gwctl reads or writes goes through it. The audit write trims the log to
// the configured retention; without the config gwctl cannot know it, so
// it leaves trimming to the leader.
func (c *conn) store() *cluster.Store {
	retention := -1
	if c.cfg != nil {
		retention = c.cfg.Cluster.Etcd.AuditRetention
	}
	return cluster.NewStore(c.cli, c.name, retention)
}

// storeErr words an error of a cluster.Store read, which already says
// what it read: a timeout names the endpoints and the timeout and wraps
// cluster.ErrEtcdUnreachable, as requestErr does.
func (c *conn) storeErr(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return c.requestErr(what, err)
	}
	return err
}

// connExit prints err from open and returns the exit status: 2 for both an
// unreachable cluster and unusable settings.
func connExit(std *stdio, err error) int {
	fmt.Fprintf(std.err, "gwctl: %v\n", err)
	return exitUsage
}

// validName reports whether s is a name as config allows them:
// [a-z0-9][a-z0-9_-]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '-' || r == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// knownLinks returns the link names the cluster has: the configuration's,
// in order, or else the current verdict's, sorted.
func (c *conn) knownLinks(v *cluster.VerdictRecord) []string {
	if c.cfg != nil {
		return allLinkNames(c.cfg)
	}
	if v == nil {
		return nil
	}
	return sortedKeys(v.Links)
}
