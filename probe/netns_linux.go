package probe

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// enterNetns moves the calling thread (locked by the caller) into the
// network namespace bound at path and returns how to move it back.
func enterNetns(path string) (func() error, error) {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("probe: current network namespace: %w", err)
	}
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(orig)
		return nil, fmt.Errorf("probe: network namespace %s: %w", path, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		unix.Close(orig)
		return nil, fmt.Errorf("probe: enter network namespace %s: %w", path, err)
	}
	return func() error {
		defer unix.Close(orig)
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("probe: leave network namespace %s: %w", path, err)
		}
		return nil
	}, nil
}
