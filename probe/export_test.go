package probe

// TestConfig gives the external tests (package probe_test) the same
// starting configuration as the internal ones.
var TestConfig = testConfig
