package main

import (
	"strings"
	"testing"

	"gwstated/cluster"
	"gwstated/linkstate"
)

// TestStatusForeignRecords: every record that does not fit the
// configuration is one warning naming its key.
func TestStatusForeignRecords(t *testing.T) {
	base := func() statusInput {
		return statusInput{
			Cluster:     "office",
			Links:       []string{"isp1", "isp2"},
			ConfigNodes: map[string]bool{"fw1": false, "fw2": false},
			Snapshot: cluster.Snapshot{
				Nodes:     map[string]cluster.NodeRecord{},
				Applied:   map[string]cluster.AppliedRecord{},
				Overrides: map[string]linkstate.Override{},
			},
		}
	}
	cases := []struct {
		name string
		edit func(*statusInput)
		want string
	}{
		{"applied of unknown node", func(in *statusInput) {
			in.Applied["fw9"] = cluster.AppliedRecord{Node: "fw9", Seq: 1}
		}, "applied/fw9: a record of a node that is not in the configuration"},
		{"nodes of unknown node", func(in *statusInput) {
			in.Nodes["fw9; reboot"] = cluster.NodeRecord{Node: "fw9; reboot"}
		}, `nodes/fw9; reboot: a record of a node that is not in the configuration`},
		{"applied names another node", func(in *statusInput) {
			in.Applied["fw1"] = cluster.AppliedRecord{Node: "fw2", Seq: 1}
		}, `applied/fw1: the record names node "fw2"`},
		{"override of unknown link", func(in *statusInput) {
			in.Overrides["isp9"] = linkstate.Override{Link: "isp9", Action: linkstate.Drain}
		}, "override/isp9: an override of a link that is not in the configuration"},
		{"override names another link", func(in *statusInput) {
			in.Overrides["isp1"] = linkstate.Override{Link: "isp2", Action: linkstate.Drain}
		}, `override/isp1: the record names link "isp2"`},
		{"verdict with pf metacharacters", func(in *statusInput) {
			in.Verdict = &cluster.VerdictRecord{Verdict: linkstate.Verdict{Seq: 3,
				Links:  map[string]linkstate.LinkVerdict{"isp1": {State: linkstate.Up}, "em0 }\npass all": {State: linkstate.Up}},
				Active: []string{"isp1", "x;reboot"}}}
		}, `the verdict names links that are not in the configuration: ["em0 }\npass all" "x;reboot"]`},
		{"node reports a problem", func(in *statusInput) {
			in.Nodes["fw1"] = cluster.NodeRecord{Node: "fw1", Problems: []string{`gossip peer "fw9": gossip from a node that is not in the configuration`}}
		}, `node fw1 reports: gossip peer "fw9": gossip from a node`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := base()
			c.edit(&in)
			s := computeStatus(in, t0)
			n := 0
			for _, w := range s.Warnings {
				if strings.Contains(w, c.want) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d warnings containing %q, want 1; warnings:\n%s", n, c.want, strings.Join(s.Warnings, "\n"))
			}
			if s.Health != healthDegraded {
				t.Errorf("health %q, want degraded", s.Health)
			}
		})
	}
}
