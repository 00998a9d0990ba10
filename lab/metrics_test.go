package lab

import (
	"bufio"
	"strings"
	"testing"
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
