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
`
	m, err := parseMetrics(bufio.NewScanner(strings.NewReader(in)))
	if err != nil || m[`gwstated_etcd_mode{mode="hold"}`] != 1 || m[`gwstated_link_observed_state{link="isp1"}`] != -1 || m["gwstated_apply_operations_total"] != 12 || len(m) != 3 {
		t.Errorf("parseMetrics: %v, %v", m, err)
	}
	if _, err := parseMetrics(bufio.NewScanner(strings.NewReader("novalue\n"))); err == nil {
		t.Error("a line without a value: no error")
	}
	if _, err := parseMetrics(bufio.NewScanner(strings.NewReader("x{a=\"b\"} one\n"))); err == nil {
		t.Error("a value that is not a number: no error")
	}
}
