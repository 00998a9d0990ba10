package pfapply

import (
	"fmt"
	"strings"
	"testing"

	"gwstated/config"
	"gwstated/linkstate"
)

// benchConfig is a config of n links in one tier, all up and active: the
// largest output (every pass anchor holds n-1 rules).
func benchConfig(b *testing.B, n int) (*config.Config, linkstate.Verdict) {
	var y strings.Builder
	y.WriteString(`
node: fw1
cluster:
  name: bench
  gossip: {bind: 127.0.0.1:7946, insecure: true}
  etcd: {endpoints: [http://127.0.0.1:2379]}
lan: {interface: dc0, network: 192.168.0.0/24}
sticky:
  - {name: https, proto: tcp, ports: [443, 8443]}
  - {name: ssh, proto: tcp, ports: [22], link: isp1}
nodes:
  fw1: {}
links:
`)
	for i := range n {
		fmt.Fprintf(&y, "  - {name: isp%d, interface: em%d, gateway: 10.%d.%d.1}\n", i, i, i/256, i%256)
	}
	cfg := parseConfig(b, y.String())
	var names []string
	for _, l := range cfg.Links {
		names = append(names, l.Name)
	}
	return cfg, verdict(cfg, names, names)
}

// BenchmarkRender: go test -run '^$' -bench Render -benchmem ./pfapply/
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{2, 8, 64} {
		b.Run(fmt.Sprintf("links=%d", n), func(b *testing.B) {
			cfg, v := benchConfig(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(cfg, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
