package deploy

import (
	"fmt"
	"gwstated/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// needTool returns the path of an external program a test needs. Without
// it the test is skipped, or fails when GWSTATED_REQUIRE_LAB=1 (CI), so a
// missing install step cannot pass unnoticed.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	testkit.SkipOrRequire(t, fmt.Sprintf("%s not found (apt-get install %s)", name, pkg))
	return ""
}

// pfgrammar returns the path of the independent pf.conf(5) grammar checker,
// shared/tools/pfgrammar.py beside the repository (as in CI), skipping or
// failing like needTool when it or python3 is missing.
func pfgrammar(t *testing.T) (python, script string) {
	t.Helper()
	python = needTool(t, "python3", "python3")
	script, err := filepath.Abs(filepath.Join("..", "..", "shared", "tools", "pfgrammar.py"))
	if err == nil {
		_, err = os.Stat(script)
	}
	if err != nil {
		testkit.SkipOrRequire(t, fmt.Sprintf("pf grammar checker not found: %v (CI has shared/ beside the repository)", err))
	}
	return python, script
}
