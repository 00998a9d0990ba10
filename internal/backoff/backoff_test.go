package backoff

import (
	"slices"
	"testing"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100e6, Max: 1e9}
	var got []int64
	for i := range 6 {
		got = append(got, int64(b.Delay(i)/1e6))
	}
	if want := []int64{100, 200, 400, 800, 1000, 1000}; !slices.Equal(got, want) {
		t.Errorf("delays %v ms, want %v", got, want)
	}
	if d := (Backoff{}).Delay(100); d != 30e9 {
		t.Errorf("default max %v, want 30s", d)
	}
}
