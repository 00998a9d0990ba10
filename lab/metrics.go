package lab

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// metricsPort is where the lab config has every agent serve /metrics
// (metrics.listen 0.0.0.0:9707 in cluster.yaml.tmpl).
const metricsPort = "9707"

// Metrics reads node's /metrics, from inside its namespace, into a map
// from series (name{label="value",...}, as the text format prints it,
// without the cluster and node labels every series carries) to value. It is how the harness reads an agent's state: etcd mode, each
// link's observed state, counters.
func (c *Cluster) Metrics(ctx context.Context, node string) (map[string]float64, error) {
	ns := c.Lab.NetnsPath(node)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialInNetns(ctx, ns, "127.0.0.1:"+metricsPort)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+node+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("lab: %s /metrics: %w", node, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("lab: %s /metrics: %s", node, resp.Status)
	}
	return parseMetrics(bufio.NewScanner(resp.Body))
}

// parseMetrics reads the Prometheus text format: "series value" lines,
// comments skipped.
func parseMetrics(sc *bufio.Scanner) (map[string]float64, error) {
	out := map[string]float64{}
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("lab: metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("lab: metrics line %q: %w", line, err)
		}
		out[withoutTargetLabels(line[:i])] = v
	}
	return out, sc.Err()
}

// targetLabel matches the labels every agent series carries (cluster and
// node: one value per /metrics), which parseMetrics leaves out of its keys.
var targetLabel = regexp.MustCompile(`(?:cluster|node)="[^"]*",?`)

// withoutTargetLabels turns name{cluster="c",link="l",node="n"} into
// name{link="l"}, and name{cluster="c",node="n"} into name.
func withoutTargetLabels(series string) string {
	s := targetLabel.ReplaceAllString(series, "")
	s = strings.Replace(s, ",}", "}", 1)
	return strings.TrimSuffix(s, "{}")
}

// MetricSum is the sum of node's series of metric name whose labels
// include every one of match (`to="down"`, `link="isp1"`); 0 when there is
// none (a labelled counter has no series before its first event).
func (c *Cluster) MetricSum(ctx context.Context, node, name string, match ...string) (float64, error) {
	m, err := c.Metrics(ctx, node)
	if err != nil {
		return 0, err
	}
	return sumSeries(m, name, match...), nil
}

// sumSeries adds the values of the series of name in m whose labels
// include every one of match.
func sumSeries(m map[string]float64, name string, match ...string) float64 {
	sum := 0.0
	for series, v := range m {
		n, labels, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		labels = "," + strings.TrimSuffix(labels, "}") + ","
		ok := true
		for _, l := range match {
			ok = ok && strings.Contains(labels, ","+l+",")
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// UnixSeconds turns a *_timestamp_seconds gauge into a time (zero for 0).
func UnixSeconds(v float64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	sec := math.Floor(v)
	return time.Unix(int64(sec), int64((v-sec)*1e9))
}
