package netns

import (
	"os/exec"
	"strings"
	"testing"
)

func TestScratch(t *testing.T) {
	var name string
	t.Run("make", func(t *testing.T) {
		name = Scratch(t, "netnstest")
		if !strings.HasPrefix(name, Prefix) || !strings.Contains(name, "-netnstest") {
			t.Errorf("name %q: want %s<pid>-netnstest<n>", name, Prefix)
		}
		out, err := exec.Command("ip", "-n", name, "-o", "link", "show", "lo").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "UP") {
			t.Errorf("lo in %s: %v %s, want up", name, err, out)
		}
	})
	if name == "" {
		return // skipped
	}
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), name) {
		t.Errorf("%s still exists after its test ended", name)
	}
}
