package linkstate

import (
	"errors"
	"slices"
	"testing"
)

// TestVerdictUse: ready is Up or Active, active is Active; a verdict naming
// links outside the configuration is refused, naming each once.
func TestVerdictUse(t *testing.T) {
	v := Verdict{
		Links:  map[string]LinkVerdict{"isp1": {State: Up}, "isp2": {State: Down}, "lte": {State: Up}},
		Active: []string{"isp1"},
	}
	ready, active, err := v.Use([]string{"isp1", "isp2", "lte"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ready, []bool{true, false, true}) || !slices.Equal(active, []bool{true, false, false}) {
		t.Fatalf("ready %v active %v", ready, active)
	}
	// all_down=all: Down links in Active are used.
	v = Verdict{Links: map[string]LinkVerdict{"isp1": {State: Down}}, Active: []string{"isp1"}, AllDown: true}
	if ready, active, _ := v.Use([]string{"isp1"}); !ready[0] || !active[0] {
		t.Fatalf("all down, in Active: ready %v active %v", ready, active)
	}
	v = Verdict{Links: map[string]LinkVerdict{"isp1": {State: Up}, "x; reboot": {State: Up}}, Active: []string{"x; reboot", "ghost"}}
	_, _, err = v.Use([]string{"isp1"})
	if !errors.Is(err, ErrUnknownLink) {
		t.Fatalf("err %v, want ErrUnknownLink", err)
	}
	if want := `verdict names a link the configuration lacks: "ghost", "x; reboot" (configured links: isp1)`; err.Error() != want {
		t.Fatalf("err %q\nwant %q", err, want)
	}
}
