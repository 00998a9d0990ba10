package nftapply

// SwapChains is swapPlan, for the tests: the chains a rule swap from the
// table text old to p's would replace; false when nft -f must load p.
func SwapChains(old string, p Plan) ([]string, bool) { return swapPlan(old, p) }

// SwapBatch encodes the rule swap of chains to p's rules.
func SwapBatch(p Plan, chains []string) (Batch, error) { return swapBatch(p.rules, chains) }
