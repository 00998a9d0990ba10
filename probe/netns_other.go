//go:build !linux

package probe

import "errors"

func enterNetns(path string) (func() error, error) {
	return nil, errors.New("probe: network namespaces (WithNetns) exist on Linux only")
}
