package nftapply

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// openNetns opens the named network namespace (/run/netns/NAME, where
// `ip netns` keeps them) for a netlink socket of the swap, the state
// killer or the route writer; the caller closes it. A name that is not a
// single file name, or starts with a dot, is refused.
func openNetns(name string) (*os.File, error) {
	if err := checkNetnsName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join("/run/netns", name))
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", name, err)
	}
	return f, nil
}

func checkNetnsName(name string) error {
	if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("network namespace name %q: not a namespace name", name)
	}
	return nil
}
