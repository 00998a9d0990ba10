package nftapply

import (
	"maps"
	"testing"
)

func TestBatchFailures(t *testing.T) {
	for _, c := range []struct {
		stderr string
		want   map[int]string
	}{
		{"", map[int]string{}},
		{"Error: Nexthop has invalid gateway.\nCommand failed -:2\nRTNETLINK answers: File exists\nCommand failed -:4\n",
			map[int]string{2: "Error: Nexthop has invalid gateway.", 4: "RTNETLINK answers: File exists"}},
		{"Command failed -:1", map[int]string{1: ""}},
		// Not ip's format: nothing is attributed to a line.
		{"Command failed -:x\nCommand failed -:0\nCommand failed -:-3\nsomething else", map[int]string{}},
	} {
		if got := batchFailures(c.stderr); !maps.Equal(got, c.want) {
			t.Errorf("batchFailures(%q) = %v, want %v", c.stderr, got, c.want)
		}
	}
}
