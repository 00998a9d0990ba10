//go:build !linux

package lab

import (
	"context"
	"errors"
	"net"
)

// dialInNetns needs Linux network namespaces.
func dialInNetns(ctx context.Context, nsPath, addr string) (net.Conn, error) {
	return nil, errors.New("lab: network namespaces need Linux")
}
