package probe

import "gwstated/config"

// testConfig is what the probe tests start from: config.Default() for node
// fw1 with links, their zero fields filled as Parse fills them
// (ApplyDefaults). What a test varies (profile, targets, need, timings,
// probe sources) stays explicit in its links and Nodes.
func testConfig(links ...config.Link) *config.Config {
	c := config.Default()
	c.Node = "fw1"
	c.Links = links
	c.ApplyDefaults()
	return &c
}
