package agent

import (
	"fmt"
	"strings"
	"testing"

	"gwstated/cluster"
	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/pfapply"
)

func checkConfig(t *testing.T) *config.Config {
	t.Helper()
	yaml := fmt.Sprintf(testConfig, 1, 2, "http://127.0.0.1:1", t.TempDir())
	cfg, err := config.Parse([]byte(yaml), "fw1")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCheckVerdictHostileNames: nothing from a verdict reaches a rendered
// rule except the state of a configured link. Link names the config does
// not define (pf and nft metacharacters included) are dropped, or the
// verdict refused when it would make such a link active; what is rendered
// is exactly what the clean verdict renders.
func TestCheckVerdictHostileNames(t *testing.T) {
	cfg := checkConfig(t)
	clean := linkstate.Verdict{Seq: 5, Active: []string{"isp1"}, Links: map[string]linkstate.LinkVerdict{
		"isp1": {State: linkstate.Up}, "isp2": {State: linkstate.Down},
	}}
	hostile := []string{
		"isp3", "fxp0; reboot", "isp1 }\npass all", `isp1" ; flush ruleset`, "$(reboot)", "isp1\x00", "<table>", strings.Repeat("x", 1<<16),
	}
	want, err := pfapply.Render(cfg, clean)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range hostile {
		short := name
		if len(short) > 20 {
			short = short[:20]
		}
		t.Run(fmt.Sprintf("links/%q", short), func(t *testing.T) {
			v := clean
			v.Links = map[string]linkstate.LinkVerdict{name: {State: linkstate.Up}}
			for k, lv := range clean.Links {
				v.Links[k] = lv
			}
			v.Impaired = []linkstate.Impairment{{Node: "fw2", Link: name}}
			out, problem, refuse := checkVerdict(cfg, cluster.VerdictRecord{Verdict: v, Leader: "fw2"})
			if refuse || problem == "" || !strings.Contains(problem, fmt.Sprintf("%q", name)) {
				t.Fatalf("refuse=%v problem=%q; want a problem naming %q, not refused", refuse, problem, name)
			}
			got, err := pfapply.Render(cfg, out.Verdict)
			if err != nil {
				t.Fatalf("render after the check: %v", err)
			}
			if got.Hash != want.Hash {
				t.Errorf("rendered hash %s, want the clean verdict's %s", got.Hash, want.Hash)
			}
			for _, an := range got.Anchors {
				if strings.Contains(an.Rules, name) || strings.Contains(an.Name, name) {
					t.Errorf("rendered rules contain %q", name)
				}
			}
			if _, ok := v.Links[name]; !ok {
				t.Error("checkVerdict changed its argument's map")
			}
		})
		t.Run(fmt.Sprintf("active/%q", short), func(t *testing.T) {
			v := clean
			v.Active = []string{"isp1", name}
			_, problem, refuse := checkVerdict(cfg, cluster.VerdictRecord{Verdict: v, Leader: "fw2"})
			if !refuse || !strings.Contains(problem, "refused") {
				t.Errorf("refuse=%v problem=%q; want refused", refuse, problem)
			}
		})
	}
	if _, problem, refuse := checkVerdict(cfg, cluster.VerdictRecord{Verdict: clean}); problem != "" || refuse {
		t.Errorf("clean verdict: problem %q refuse %v", problem, refuse)
	}
}

// TestAcceptVerdictLogsOnce: the same foreign names in a stream of
// verdicts from one leader are logged once.
func TestAcceptVerdictLogsOnce(t *testing.T) {
	cfg := checkConfig(t)
	el := &lineCounter{}
	a := &agent{cfg: cfg, log: el.logger()}
	for seq := range uint64(50) {
		v := linkstate.Verdict{Seq: seq + 1, Active: []string{"isp1"}, Links: map[string]linkstate.LinkVerdict{
			"isp1": {State: linkstate.Up}, "isp2": {State: linkstate.Up}, "isp9": {State: linkstate.Up}}}
		if _, ok := a.acceptVerdict(cluster.VerdictRecord{Verdict: v, Leader: "fw2"}); !ok {
			t.Fatal("refused a verdict whose active links are configured")
		}
	}
	if el.n != 1 {
		t.Errorf("%d error lines for 50 verdicts naming isp9, want 1", el.n)
	}
}
