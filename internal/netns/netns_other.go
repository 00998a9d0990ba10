//go:build !linux

package netns

import (
	"context"
	"errors"
	"net"
)

// ErrUnsupported: network namespaces are Linux's.
var ErrUnsupported = errors.New("netns: network namespaces exist only on Linux")

// Enter returns ErrUnsupported.
func Enter(path string) (func() error, error) { return nil, ErrUnsupported }

// Dial returns ErrUnsupported.
func Dial(ctx context.Context, path, network, address string) (net.Conn, error) {
	return nil, ErrUnsupported
}
