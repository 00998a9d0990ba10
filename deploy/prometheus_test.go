package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			EvalTime  string           `yaml:"eval_time"`
			AlertName string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// readYAML decodes the parts of a file the test reads (other fields are
// left to promtool, which rejects unknown ones).
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin := needTool(t, "promtool", "prometheus")
	cmd := exec.Command(bin, args...)
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRules runs promtool check rules and promtool test rules on the
// alerts, and checks that every alert has a severity, a summary and a
// description, names only series gwstated exports, and has a unit test in
// which it fires and one in which it must not.
func TestAlertRules(t *testing.T) {
	promtool(t, "check", "rules", "gwstated-alerts.yml")
	out := promtool(t, "test", "rules", "gwstated-alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules: no SUCCESS in\n%s", out)
	}

	var rules ruleFile
	readYAML(t, filepath.Join("prometheus", "gwstated-alerts.yml"), &rules)
	var tests ruleTests
	readYAML(t, filepath.Join("prometheus", "gwstated-alerts_test.yml"), &tests)
	if !slices.Equal(tests.RuleFiles, []string{"gwstated-alerts.yml"}) {
		t.Errorf("the unit tests load %v, want the alerts file only", tests.RuleFiles)
	}
	fires, quiet := map[string]int{}, map[string]int{}
	cases := 0
	for _, tg := range tests.Tests {
		for _, c := range tg.AlertRuleTest {
			cases++
			if len(c.ExpAlerts) > 0 {
				fires[c.AlertName]++
			} else {
				quiet[c.AlertName]++
			}
		}
	}
	known := exported()
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("rule %q is not an alert: record rules belong elsewhere", r.Record)
				continue
			}
			alerts = append(alerts, r.Alert)
			if !strings.HasPrefix(r.Alert, "Gwstated") {
				t.Errorf("alert %s: want a name starting with Gwstated", r.Alert)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: want a summary and a description", r.Alert)
			}
			for _, e := range checkPromQLNames(r.Expr, known) {
				t.Errorf("alert %s: %s\n\t%s", r.Alert, e, r.Expr)
			}
			if fires[r.Alert] == 0 || quiet[r.Alert] == 0 {
				t.Errorf("alert %s: %d test cases where it fires and %d where it does not, want at least one of each",
					r.Alert, fires[r.Alert], quiet[r.Alert])
			}
		}
	}
	for name := range fires {
		if !slices.Contains(alerts, name) {
			t.Errorf("the unit tests expect alert %s, which the rules do not define", name)
		}
	}
	// The alerts the operator's guide promises (issue 16).
	for _, want := range []string{"GwstatedLinkDown", "GwstatedAllLinksDown", "GwstatedNodeImpaired",
		"GwstatedApplyErrors", "GwstatedRulesetMismatch", "GwstatedNoLeader", "GwstatedNotEtcdMode",
		"GwstatedNodeBehind", "GwstatedDriftRepairs", "GwstatedGossipMembersMissing", "GwstatedLinkSuppressed"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
	t.Logf("promtool test rules: %d alerts, %d test groups, %d alert_rule_test cases (%d firing, %d quiet)",
		len(alerts), len(tests.Tests), cases, sum(fires), sum(quiet))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestPrometheusConfig checks the example scrape configuration, which
// loads the alerts.
func TestPrometheusConfig(t *testing.T) {
	out := promtool(t, "check", "config", "prometheus.yml")
	if !strings.Contains(out, "SUCCESS: 1 rule files found") {
		t.Errorf("promtool check config did not load the rule file:\n%s", out)
	}
}
