package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type grafanaPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaVars stands in for the dashboard's variables so that promtool can
// parse the expressions.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "${cluster}", "office",
	"$cluster", "office", "${link}", ".*", "$link", ".*")

// TestGrafanaDashboard checks that every expression of the dashboard
// parses (promtool check rules on a generated rule file holding each as a
// recording rule) and names only series and labels gwstated exports, and
// that the panels the operator's guide describes are there.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("grafana", "gwstated.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/gwstated.json: %v", err)
	}
	if d.UID != "gwstated" || d.Title == "" {
		t.Errorf("uid %q title %q: want uid gwstated and a title", d.UID, d.Title)
	}
	known := exported()
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	used := map[string]bool{}
	ids := map[int]bool{}
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: gridPos x %d w %d outside the 24 columns", p.Title, p.GridPos.X, p.GridPos.W)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				expr := grafanaVars.Replace(tg.Expr)
				if strings.Contains(expr, "$") {
					t.Errorf("panel %q: unknown variable in %s", p.Title, tg.Expr)
				}
				for _, e := range checkPromQLNames(expr, known) {
					t.Errorf("panel %q: %s\n\t%s", p.Title, e, tg.Expr)
				}
				for _, m := range promqlNames(expr).metrics {
					used[strings.TrimSuffix(m, "_bucket")] = true
				}
				rules = append(rules, rule{Record: fmt.Sprintf("gwstated_dashboard:panel%d_%s", p.ID, tg.RefID), Expr: expr})
			}
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*([a-z_]+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, s)
			continue
		}
		// the label must be on the selector's metric: check "max by (LABEL) (SELECTOR)"
		expr := grafanaVars.Replace(fmt.Sprintf("max by (%s) (%s)", m[2], m[1]))
		for _, e := range checkPromQLNames(expr, known) {
			t.Errorf("variable %s: %s", v.Name, e)
		}
		rules = append(rules, rule{Record: "gwstated_dashboard:var_" + v.Name, Expr: expr})
	}
	for _, want := range []string{"gwstated_link_verdict_state", "gwstated_link_observed_state",
		"gwstated_probe_loss_ratio", "gwstated_probe_rtt_seconds", "gwstated_link_transitions_total",
		"gwstated_apply_duration_seconds", "gwstated_leader", "gwstated_etcd_mode"} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}

	doc := map[string]any{"groups": []map[string]any{{"name": "dashboard", "rules": rules}}}
	y, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, y, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := needTool(t, "promtool", "prometheus")
	out, err := exec.Command(bin, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard's expressions: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(rules)); !strings.Contains(string(out), want) {
		t.Errorf("promtool: want %q in\n%s", want, out)
	}
	t.Logf("%d expressions parsed by promtool", len(rules))
}
