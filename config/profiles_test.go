package config

import (
	"testing"
)

// Every probe profile fills a link's probe with values that validate, and
// survives Marshal (gwctl check --print-defaults) and Parse.
func TestProfilesValidate(t *testing.T) {
	for name, prof := range Profiles {
		cfg, err := parseFile(t, "testdata/valid-minimal.yaml")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Links[0].Probe = Probe{Profile: name}
		cfg.ApplyDefaults()
		if err := cfg.Validate(); err != nil {
			t.Errorf("profile %s: %v", name, err)
		}
		p := cfg.Links[0].Probe
		if p.Interval != prof.Interval || p.Fall != prof.Fall || p.Window != prof.Window || p.Timeout != prof.Timeout {
			t.Errorf("profile %s filled %+v", name, p)
		}
		out, err := Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(out, cfg.Node)
		if err != nil {
			t.Fatalf("profile %s: Parse(Marshal): %v\n%s", name, err, out)
		}
		if back.Links[0].Probe.Interval != prof.Interval || back.Links[0].Probe.Profile != name {
			t.Errorf("profile %s after Marshal and Parse: %+v", name, back.Links[0].Probe)
		}
	}
}
