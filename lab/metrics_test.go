package lab

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	in := `# HELP gwstated_etcd_mode x
# TYPE gwstated_etcd_mode gauge
gwstated_etcd_mode{mode="hold"} 1
gwstated_link_observed_state{link="isp1"} -1
gwstated_apply_operations_total 12
gwstated_link_verdict_state{cluster="lab",link="isp2",node="fw1"} 1
gwstated_applied_seq{cluster="lab",node="fw1"} 7
gwstated_gossip_members{cluster="lab",node="fw1",state="alive"} 3
`
	m, err := parseMetrics(bufio.NewScanner(strings.NewReader(in)))
	if err != nil || m[`gwstated_etcd_mode{mode="hold"}`] != 1 || m[`gwstated_link_observed_state{link="isp1"}`] != -1 || m["gwstated_apply_operations_total"] != 12 ||
		m[`gwstated_link_verdict_state{link="isp2"}`] != 1 || m["gwstated_applied_seq"] != 7 ||
		m[`gwstated_gossip_members{state="alive"}`] != 3 || len(m) != 6 {
		t.Errorf("parseMetrics: %v, %v", m, err)
	}
	if _, err := parseMetrics(bufio.NewScanner(strings.NewReader("novalue\n"))); err == nil {
		t.Error("a line without a value: no error")
	}
	if _, err := parseMetrics(bufio.NewScanner(strings.NewReader("x{a=\"b\"} one\n"))); err == nil {
		t.Error("a value that is not a number: no error")
	}
}

func TestSumSeries(t *testing.T) {
	m := map[string]float64{
		`gwstated_probe_target_transitions_total{link="isp1",target="198.18.1.1",to="down"}`:   2,
		`gwstated_probe_target_transitions_total{link="isp1",target="203.0.113.1",to="down"}`:  3,
		`gwstated_probe_target_transitions_total{link="isp1",target="198.18.1.1",to="up"}`:     5,
		`gwstated_probe_target_transitions_total{link="isp10",target="198.18.10.1",to="down"}`: 7,
		`gwstated_probe_target_transitions_totalx{to="down"}`:                                  11,
		"gwstated_ruleset_changes_total":                                                       4,
	}
	for _, c := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"gwstated_probe_target_transitions_total", []string{`to="down"`}, 12},
		{"gwstated_probe_target_transitions_total", []string{`to="down"`, `link="isp1"`}, 5},
		{"gwstated_probe_target_transitions_total", nil, 17},
		{"gwstated_ruleset_changes_total", nil, 4},
		{"gwstated_ruleset_changes_total", []string{`to="down"`}, 0},
		{"gwstated_absent", nil, 0},
	} {
		if got := sumSeries(m, c.name, c.match...); got != c.want {
			t.Errorf("sumSeries(%s, %q) = %v, want %v", c.name, c.match, got, c.want)
		}
	}
	if !UnixSeconds(0).IsZero() {
		t.Error("UnixSeconds(0) is not the zero time")
	}
	if got := UnixSeconds(1796000000.25); !got.Equal(time.Unix(1796000000, 250_000_000)) {
		t.Errorf("UnixSeconds(1796000000.25) = %v", got)
	}
}
