package lab

import (
	"bytes"
	"strings"
	"testing"
)

// TestDemo runs `make demo`'s logic end to end: it must succeed and show
// each step.
func TestDemo(t *testing.T) {
	Require(t)
	var out bytes.Buffer
	err := Demo(t.Context(), &out, DemoOptions{Bin: binaries(t), Dir: t.TempDir()})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"gwctl status", "cluster  lab (healthy)", "Cutting isp1", "isp1 up→down",
		"nat-isp1:    (empty)", "Recovered", "isp1 down→up",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
