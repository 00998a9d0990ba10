package lab

// AgentConfig is the config file node's agent reads (its own copy with
// the nft data plane, else the shared ConfigPath): what a SIGHUP test
// rewrites.
func (c *Cluster) AgentConfig(node string) string { return c.agentConfig(node) }
