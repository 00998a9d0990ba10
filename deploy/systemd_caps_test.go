package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gwstated/internal/testkit"
)

// TestUnitCapabilitiesSuffice runs, as user nobody with exactly the
// ambient capabilities gwstated.service grants (setpriv, in a fresh network
// namespace so nothing on the host changes), what the agent does with
// them on Linux: open a raw ICMP socket (the prober), and have nft, ip and
// conntrack change and read the kernel's tables. The same commands without
// the capabilities must fail, so the test shows the unit needs them and
// that they are enough.
func TestUnitCapabilitiesSuffice(t *testing.T) {
	if os.Geteuid() != 0 {
		testkit.SkipOrRequire(t, "needs root (setpriv, unshare)")
	}
	for _, tool := range []struct{ name, pkg string }{{"setpriv", "util-linux"}, {"unshare", "util-linux"},
		{"nft", "nftables"}, {"ip", "iproute2"}, {"conntrack", "conntrack"}, {"python3", "python3"}} {
		needTool(t, tool.name, tool.pkg)
	}
	unit := readUnit(t, filepath.Join("linux", "gwstated.service"))
	caps := strings.Fields(unit.one(t, "AmbientCapabilities"))
	if len(caps) == 0 {
		t.Fatal("gwstated.service grants no ambient capabilities")
	}
	var set []string
	for _, c := range caps {
		set = append(set, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	// What the agent does: the prober's raw socket, then the data plane's
	// programs (a table, a policy rule and route, a conntrack listing).
	script := `set -e
python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)'
nft add table inet gwstated
nft add chain inet gwstated prerouting '{ type filter hook prerouting priority mangle; }'
nft delete table inet gwstated
ip link set lo up
ip route add 192.0.2.0/24 dev lo table 100
ip rule add fwmark 0x100 lookup 100 priority 100
ip rule del fwmark 0x100 lookup 100 priority 100
conntrack -L >/dev/null 2>&1 || conntrack -L
echo all-ok`
	run := func(withCaps bool) (string, error) {
		args := []string{"--net", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs"}
		if withCaps {
			c := strings.Join(set, ",")
			args = append(args, "--inh-caps=-all,"+c, "--ambient-caps=-all,"+c, "--bounding-set=-all,"+c)
		} else {
			args = append(args, "--inh-caps=-all", "--bounding-set=-all")
		}
		args = append(args, "sh", "-c", script)
		out, err := exec.Command("unshare", args...).CombinedOutput()
		return string(out), err
	}
	out, err := run(true)
	if err != nil || !strings.Contains(out, "all-ok") {
		t.Errorf("as nobody with %v: %v\n%s", caps, err, out)
	}
	if out, err := run(false); err == nil || strings.Contains(out, "all-ok") {
		t.Errorf("as nobody without capabilities the same commands succeeded: the test proves nothing\n%s", out)
	}
}
