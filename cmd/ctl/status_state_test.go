package main

import (
	"strings"
	"testing"
	"time"

	"gwstated/cluster"
	"gwstated/linkstate"
)

// A node whose state directory is full applies all the same; status warns
// about it (health degraded) until the node reports the write done again.
func TestStatusStateFileError(t *testing.T) {
	in := statusInput{
		Cluster:     "office",
		Links:       []string{"isp1"},
		ConfigNodes: map[string]bool{"fw1": false},
		Snapshot: cluster.Snapshot{
			Nodes:     map[string]cluster.NodeRecord{"fw1": {Node: "fw1", Mode: cluster.ModeEtcd}},
			Applied:   map[string]cluster.AppliedRecord{},
			Overrides: map[string]linkstate.Override{},
		},
	}
	const msg = "state file /var/db/gwstated/state.json: write: no space left on device"
	in.Applied["fw1"] = cluster.AppliedRecord{Node: "fw1", Seq: 1, Hash: "h", StateError: msg}
	s := computeStatus(in, time.Unix(0, 0))
	want := "node fw1 cannot save its local state file (rules applied; a restart without etcd would start without them): " + msg
	n := 0
	for _, w := range s.Warnings {
		if w == want {
			n++
		}
		if strings.Contains(w, "failed to apply") {
			t.Errorf("a state file error is reported as a failed apply: %q", w)
		}
	}
	if n != 1 || s.Health != healthDegraded {
		t.Errorf("health %q, warnings:\n%s\nwant degraded and once %q", s.Health, strings.Join(s.Warnings, "\n"), want)
	}
	in.Applied["fw1"] = cluster.AppliedRecord{Node: "fw1", Seq: 1, Hash: "h"}
	for _, w := range computeStatus(in, time.Unix(0, 0)).Warnings {
		if strings.Contains(w, "state file") {
			t.Errorf("state file warning after the write succeeded: %q", w)
		}
	}
}
