package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DataplaneNFT is ClusterOptions.Dataplane for the Linux data plane.
const DataplaneNFT = "nft"

// TrackFile is the keepalived track file node's agent writes: its
// nodes.<node>.vrrp.track_file in the shared config (the lab's nodes share
// one file system).
func (c *Cluster) TrackFile(node string) string {
	return filepath.Join(c.NodeDir(node), "vrrp-track")
}

// agentConfig is the config file node's agent reads: the shared one, for
// every node (per-node values are under nodes.<node>).
func (c *Cluster) agentConfig(string) string { return c.ConfigPath }

// writeNodeConfigs makes the firewalls' directories, where their track
// files go (nft).
func (c *Cluster) writeNodeConfigs() error {
	if c.opt.Dataplane != DataplaneNFT {
		return nil
	}
	for _, fw := range []string{FW1, FW2} {
		if err := os.MkdirAll(c.NodeDir(fw), 0o700); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	return nil
}

// statusJSON is the part of `gwctl status --json` the Linux lab reads.
type statusJSON struct {
	Verdict *struct {
		Seq     uint64   `json:"seq"`
		Active  []string `json:"active"`
		AllDown bool     `json:"all_down"`
	} `json:"verdict"`
	Leader *struct {
		Node string `json:"node"`
	} `json:"leader"`
	Nodes []struct {
		Name    string `json:"name"`
		Applied *struct {
			Seq     uint64    `json:"seq"`
			Hash    string    `json:"hash"`
			Time    time.Time `json:"time"`
			Error   string    `json:"error"`
			Backend string    `json:"backend"`
		} `json:"applied"`
	} `json:"nodes"`
}

// status reads `gwctl status --json`. gwctl exits 1 when the cluster is
// degraded (any warning) and still prints the status: that is not an
// error here.
func (c *Cluster) status(ctx context.Context) (statusJSON, error) {
	var st statusJSON
	out, err := c.Gwctl(ctx, "status", "--json")
	if out == "" && err != nil {
		return st, err
	}
	if jerr := json.Unmarshal([]byte(out), &st); jerr != nil {
		return st, fmt.Errorf("lab: gwctl status --json: %w (%v)", jerr, err)
	}
	return st, nil
}

// WaitVerdict waits until the verdict satisfies cond and both firewalls
// report (applied/<node> in etcd, via gwctl status) that they applied it
// without error: for the nft data plane, whose rules are in the kernel and
// not in files. what names the awaited verdict.
func (c *Cluster) WaitVerdict(ctx context.Context, timeout time.Duration, what string, cond func(active []string, allDown bool) bool) error {
	return waitEvery(ctx, gwctlPollEvery, timeout, "both firewalls applied "+what, func() (bool, error) {
		st, err := c.status(ctx)
		if err != nil {
			return false, err
		}
		if st.Verdict == nil {
			return false, fmt.Errorf("no verdict")
		}
		if !cond(st.Verdict.Active, st.Verdict.AllDown) {
			return false, fmt.Errorf("verdict %d active %v all_down %v", st.Verdict.Seq, st.Verdict.Active, st.Verdict.AllDown)
		}
		done := 0
		for _, n := range st.Nodes {
			if n.Name != FW1 && n.Name != FW2 {
				continue
			}
			if n.Applied == nil || n.Applied.Seq != st.Verdict.Seq || n.Applied.Error != "" {
				return false, fmt.Errorf("%s applied %+v, verdict seq %d", n.Name, n.Applied, st.Verdict.Seq)
			}
			done++
		}
		return done == 2, fmt.Errorf("%d of 2 firewalls reported", done)
	})
}

// WaitApplied waits until the verdict's active links are exactly up (not
// all down) and both firewalls applied it (WaitVerdict).
func (c *Cluster) WaitApplied(ctx context.Context, up []string, timeout time.Duration) error {
	want := slices.Sorted(slices.Values(up))
	return c.WaitVerdict(ctx, timeout, fmt.Sprintf("active=%v", want), func(active []string, allDown bool) bool {
		return !allDown && slices.Equal(slices.Sorted(slices.Values(active)), want)
	})
}

// WaitAppliedAfter waits until node reports (gwctl status) an applied
// record written after since, without error: e.g. a restarted agent that
// has taken over its rules.
func (c *Cluster) WaitAppliedAfter(ctx context.Context, node string, since time.Time, timeout time.Duration) error {
	return waitEvery(ctx, gwctlPollEvery, timeout, node+" applied after "+since.Format(time.StampMilli), func() (bool, error) {
		st, err := c.status(ctx)
		if err != nil {
			return false, err
		}
		for _, n := range st.Nodes {
			if n.Name == node && n.Applied != nil && n.Applied.Time.After(since) {
				if n.Applied.Error != "" {
					return false, fmt.Errorf("%s: %s", node, n.Applied.Error)
				}
				return true, nil
			}
		}
		return false, nil
	})
}

// Leader returns the agent leader's node name ("" when none).
func (c *Cluster) Leader(ctx context.Context) (string, error) {
	st, err := c.status(ctx)
	if err != nil || st.Leader == nil {
		return "", err
	}
	return st.Leader.Node, nil
}

// NFTTable returns `nft list table inet gwstated` in fw's namespace
// ("" when there is no such table).
func (c *Cluster) NFTTable(ctx context.Context, fw string) (string, error) {
	out, err := output(ctx, "ip", "netns", "exec", c.Lab.Netns(fw), "nft", "list", "table", "inet", "gwstated")
	if err != nil && strings.Contains(err.Error(), "No such file or directory") {
		return "", nil
	}
	return out, err
}

// LinuxOptions configure StartLinux.
type LinuxOptions struct {
	Cluster ClusterOptions // Dataplane is set to nft
	Traffic string         // the gwtraffic binary (BuildTraffic)
	// AdvertInt is keepalived's advert_int in seconds (default "0.1").
	AdvertInt string
	// SharedNAT adds a WAN-side VRRP address on every ISP segment, in one
	// keepalived sync group with the LAN address, as every link's nat_to,
	// and makes the firewalls' conntrack strict (ctsync.go); Conntrackd
	// also runs conntrackd on both firewalls, syncing their connections
	// over the sync segment, with keepalived's notify lines handing them
	// over (gwctl ctsync).
	SharedNAT, Conntrackd bool
}

// StartLinux starts the real-traffic lab on l: forwarding on (RouteLAN),
// the gwstated cluster on the nft data plane, keepalived on both
// firewalls (fw1 master), and the traffic server in every ISP. It waits
// until every link is up and applied and fw1 holds the LAN gateway.
func StartLinux(ctx context.Context, l *Lab, o LinuxOptions) (*Cluster, error) {
	if o.AdvertInt == "" {
		o.AdvertInt = "0.1"
	}
	if err := l.RouteLAN(ctx); err != nil {
		return nil, err
	}
	o.Cluster.Dataplane = DataplaneNFT
	if o.Conntrackd && !o.SharedNAT {
		return nil, errors.New("lab: Conntrackd needs SharedNAT")
	}
	if o.SharedNAT {
		o.Cluster.NATTo = WANAddresses(l)
	}
	c, err := StartCluster(ctx, l, o.Cluster)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Cluster, error) { return nil, errors.Join(err, c.Close()) }
	if o.SharedNAT {
		err = c.startStateSync(ctx, o)
	}
	for _, fw := range []string{FW1, FW2} {
		if err == nil && !o.SharedNAT {
			err = c.StartKeepalived(fw, o.AdvertInt, c.TrackFile(fw))
		}
	}
	if err != nil {
		return fail(err)
	}
	if err := c.WaitVRRPMaster(ctx, FW1, 30*time.Second); err != nil {
		return fail(err)
	}
	if err := c.StartServers(ctx, o.Traffic); err != nil {
		return fail(err)
	}
	return c, nil
}
