package config

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestCarpDemoteBound: carp.demote is what gwstated passes to "ifconfig -g
// <group> carpdemote <n>", whose argument ifconfig takes with
// strtonum(argv[1], 0, 128) (sbin/ifconfig/ifconfig.c 1.476,
// setgroupattribs): 128 is accepted, 129 and -1 are not.
func TestCarpDemoteBound(t *testing.T) {
	data, err := os.ReadFile("testdata/valid-carp-natto.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v  string
		ok bool
	}{{"0", true}, {"1", true}, {"128", true}, {"129", false}, {"1024", false}, {"-1", false}} {
		_, err := Parse(bytes.Replace(data, []byte("demote: 100"), []byte("demote: "+tc.v), 1), "fw1")
		if tc.ok != (err == nil) {
			t.Errorf("carp.demote %s: %v", tc.v, err)
		}
		if err != nil && !strings.Contains(err.Error(), "carp.demote") {
			t.Errorf("carp.demote %s: error does not name the key: %v", tc.v, err)
		}
	}
}
