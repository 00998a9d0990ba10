package lab

import (
	"context"
	"fmt"
	"path/filepath"
)

// Binaries are the programs a Cluster runs, built once by Build.
type Binaries struct {
	Gwstated string // cmd/agent
	Gwctl    string // cmd/ctl
	Etcd     string // lab/labetcd: the separately started etcd member
}

// Build compiles gwstated, gwctl and labetcd into dir. It runs `go build`
// with the module's package paths, so the working directory must be inside
// the gwstated source tree (as it is for go test, go run and make).
func Build(ctx context.Context, dir string) (Binaries, error) {
	b := Binaries{
		Gwstated: filepath.Join(dir, "gwstated"),
		Gwctl:    filepath.Join(dir, "gwctl"),
		Etcd:     filepath.Join(dir, "labetcd"),
	}
	for _, p := range []struct{ out, pkg string }{
		{b.Gwstated, "gwstated/cmd/agent"}, {b.Gwctl, "gwstated/cmd/ctl"}, {b.Etcd, "gwstated/lab/labetcd"},
	} {
		if err := run(ctx, "go", "build", "-o", p.out, p.pkg); err != nil {
			return b, fmt.Errorf("lab: build %s (run from the gwstated source tree): %w", p.pkg, err)
		}
	}
	return b, nil
}
