package agent

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"gwstated/nftapply"
)

type fakeNFTRunner struct{}

func (fakeNFTRunner) Run(context.Context, []byte, string, ...string) ([]byte, error) { return nil, nil }

// TestInProcessWriters: the nft data plane's route, rule and conntrack
// writers are in-process in the agent's own namespace; a test's Runner
// gets the commands through it; a namespace that cannot be opened falls
// back to the commands and the log says why, once per writer.
func TestInProcessWriters(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))

	nl, k, w := inProcess(fakeNFTRunner{}, nil, log)
	if nl != nil {
		t.Errorf("a test's Runner: swap %T, want none", nl)
	}
	if _, ok := k.(nftapply.ExecKiller); !ok {
		t.Errorf("a test's Runner: killer %T, want ExecKiller", k)
	}
	if _, ok := w.(nftapply.ExecRouteWriter); !ok {
		t.Errorf("a test's Runner: route writer %T, want ExecRouteWriter", w)
	}
	if buf.Len() != 0 {
		t.Errorf("a test's Runner logged %q", buf.String())
	}

	_, k, w = inProcess(nftapply.ExecRunner{Netns: "gwlab-no-such-namespace"}, nil, log)
	if _, ok := k.(nftapply.ExecKiller); !ok {
		t.Errorf("missing namespace: killer %T, want the ExecKiller fallback", k)
	}
	if _, ok := w.(nftapply.ExecRouteWriter); !ok {
		t.Errorf("missing namespace: route writer %T, want the ExecRouteWriter fallback", w)
	}
	for _, want := range []string{"ctnetlink not usable", "rtnetlink not usable", "gwlab-no-such-namespace"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("fallback log lacks %q:\n%s", want, buf.String())
		}
	}

	if os.Geteuid() != 0 {
		t.Log("not root: the own-namespace case is left out")
		return
	}
	buf.Reset()
	nl, k, w = inProcess(nftapply.ExecRunner{}, nil, log)
	if nl != (nftapply.NetlinkConn{}) {
		t.Errorf("own namespace: swap %#v, want NetlinkConn{}", nl)
	}
	if _, ok := k.(*nftapply.NetlinkKiller); !ok {
		t.Errorf("own namespace: killer %T, want *NetlinkKiller (log: %s)", k, buf.String())
	}
	if _, ok := w.(*nftapply.NetlinkRouteWriter); !ok {
		t.Errorf("own namespace: route writer %T, want *NetlinkRouteWriter (log: %s)", w, buf.String())
	}
}
