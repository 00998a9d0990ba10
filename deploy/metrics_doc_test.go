package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gwstated/agent"
)

// TestMetricsDocumented checks that gwstated(8) has an entry
// (".It Sy NAME") for every metric family the agent exports and none for
// one it does not, with the labels it carries, and that the README names
// every one.
func TestMetricsDocumented(t *testing.T) {
	page := readMan(t, "gwstated.8")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\.It Sy (gwstated_[a-z_]+)(.*)$`).FindAllStringSubmatch(page, -1) {
		entries[m[1]] = m[2]
	}
	var names []string
	for _, mi := range agent.Metrics() {
		names = append(names, mi.Name)
		rest, ok := entries[mi.Name]
		if !ok {
			t.Errorf("gwstated.8 does not document metric %s (want \".It Sy %s\")", mi.Name, mi.Name)
		} else {
			for _, l := range mi.Labels {
				if l != "cluster" && l != "node" && !strings.Contains(rest, "Ar "+l) {
					t.Errorf("gwstated.8: %s does not list its label %s", mi.Name, l)
				}
			}
		}
		if !strings.Contains(string(readme), "`"+mi.Name+"`") {
			t.Errorf("README.md does not name metric %s", mi.Name)
		}
	}
	for name := range entries {
		if !slices.Contains(names, name) {
			t.Errorf("gwstated.8 documents metric %s, which the agent does not export", name)
		}
	}
}
