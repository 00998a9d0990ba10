package deploy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gwstated/agent"
)

// promqlRefs are the metric and label names a PromQL expression refers to.
type promqlRefs struct {
	metrics []string
	labels  []string // in matchers and in by/without/on/ignoring/group_* clauses
}

var (
	promqlStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promqlMatchers = regexp.MustCompile(`\{([^}]*)\}`)
	promqlMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	promqlModifier = regexp.MustCompile(`\b(?:offset\s+-?[0-9a-z]+|@\s*[0-9.]+)`)
	promqlNumbers  = regexp.MustCompile(`(^|[^a-zA-Z_:0-9])(?:0x[0-9a-fA-F]+|[0-9][0-9a-zA-Z.]*)`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promqlKeywords = []string{"and", "or", "unless", "by", "without", "on", "ignoring",
		"group_left", "group_right", "bool", "offset", "inf", "nan", "Inf", "NaN"}
)

// promqlNames extracts the names an expression uses, without a PromQL
// parser (promtool checks that it parses): strings, ranges and modifiers are
// cut out, label names are taken from matchers and grouping clauses, and
// an identifier followed by "(" is a function or aggregation. What is left
// is metric names.
func promqlNames(expr string) promqlRefs {
	var r promqlRefs
	s := promqlStrings.ReplaceAllString(expr, `""`)
	s = promqlRanges.ReplaceAllString(s, " ")
	for _, m := range promqlMatchers.FindAllStringSubmatch(s, -1) {
		for _, l := range promqlMatcher.FindAllStringSubmatch(m[1], -1) {
			r.labels = append(r.labels, l[1])
		}
	}
	s = promqlMatchers.ReplaceAllString(s, " ")
	for _, m := range promqlGrouping.FindAllStringSubmatch(s, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				r.labels = append(r.labels, l)
			}
		}
	}
	s = promqlGrouping.ReplaceAllString(s, " ")
	s = promqlModifier.ReplaceAllString(s, " ")
	s = promqlNumbers.ReplaceAllString(s, "$1 ")
	for _, m := range promqlIdent.FindAllStringSubmatch(s, -1) {
		name := strings.TrimRight(strings.TrimSuffix(strings.TrimSpace(m[0]), "("), " ")
		if m[1] != "" || slices.Contains(promqlKeywords, name) {
			continue
		}
		r.metrics = append(r.metrics, name)
	}
	return r
}

// exported maps every series name gwstated exports (histograms with their
// _bucket, _sum and _count series) to its label names, plus Prometheus' own
// up with its target labels.
func exported() map[string][]string {
	target := []string{"instance", "job"}
	out := map[string][]string{"up": target}
	for _, mi := range agent.Metrics() {
		labels := append(slices.Clone(mi.Labels), target...)
		out[mi.Name] = labels
		if mi.Type == "histogram" {
			out[mi.Name+"_bucket"] = append(slices.Clone(labels), "le")
			out[mi.Name+"_sum"] = labels
			out[mi.Name+"_count"] = labels
		}
	}
	return out
}

// checkPromQLNames reports every metric in expr that gwstated does not
// export, and every label name no metric of expr carries.
func checkPromQLNames(expr string, known map[string][]string) []string {
	refs := promqlNames(expr)
	var errs []string
	var labels []string
	for _, m := range refs.metrics {
		l, ok := known[m]
		if !ok {
			errs = append(errs, fmt.Sprintf("metric %s is not exported by gwstated", m))
			continue
		}
		labels = append(labels, l...)
	}
	if len(refs.metrics) == 0 {
		errs = append(errs, "no metric")
	}
	if len(errs) > 0 {
		return errs // the labels of an unknown metric are unknown too
	}
	for _, l := range refs.labels {
		if l != "le" && l != "__name__" && !slices.Contains(labels, l) {
			errs = append(errs, fmt.Sprintf("label %s is on none of %v", l, refs.metrics))
		}
	}
	return errs
}

func TestPromQLNames(t *testing.T) {
	for _, c := range []struct {
		expr    string
		metrics []string
		labels  []string
	}{
		{`up{job="gwstated"} == 0`, []string{"up"}, []string{"job"}},
		{`max by (cluster, link) (gwstated_link_verdict_state) == 0`, []string{"gwstated_link_verdict_state"}, []string{"cluster", "link"}},
		{`increase(gwstated_apply_errors_total[5m]) > 0`, []string{"gwstated_apply_errors_total"}, nil},
		{`max by (cluster) (x) - on (cluster) group_right y > 0`, []string{"x", "y"}, []string{"cluster", "cluster"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket{mode!~"x,y}"}[1m] offset 5m)))`, []string{"a_bucket"}, []string{"mode", "le"}},
		{`a{state="alive"} < ignoring (state) b and 1e3 > c:rec`, []string{"a", "b", "c:rec"}, []string{"state", "state"}},
		{`count(a == bool 1) or vector(0)`, []string{"a"}, nil},
	} {
		r := promqlNames(c.expr)
		if !slices.Equal(r.metrics, c.metrics) || !slices.Equal(r.labels, c.labels) {
			t.Errorf("promqlNames(%q) = %v %v, want %v %v", c.expr, r.metrics, r.labels, c.metrics, c.labels)
		}
	}
	known := exported()
	if errs := checkPromQLNames(`gwstated_nosuch{link="x"} + gwstated_leader{lnk="y"}`, known); len(errs) != 1 {
		t.Errorf("an unknown metric: got %v, want one error", errs)
	}
	if errs := checkPromQLNames(`gwstated_leader{lnk="y"} + on (clstr) gwstated_applied_seq`, known); len(errs) != 2 {
		t.Errorf("two unknown labels: got %v, want two errors", errs)
	}
	if errs := checkPromQLNames(`histogram_quantile(0.5, sum by (le, node) (rate(gwstated_apply_duration_seconds_bucket{cluster="c"}[5m])))`, known); len(errs) != 0 {
		t.Errorf("a histogram quantile: %v", errs)
	}
}
