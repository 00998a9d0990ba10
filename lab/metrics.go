package lab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metricsPort is where the lab config has every agent serve /metrics
// (metrics.listen 0.0.0.0:9707 in cluster.yaml.tmpl).
const metricsPort = "9707"

// Metrics reads node's /metrics, from inside its namespace, into a map
// from series (name{label="value",...}, as the text format prints it) to
// value. It is how the harness reads an agent's state: etcd mode, each
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
		out[line[:i]] = v
	}
	return out, sc.Err()
}
