package netns

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/unix"
)

// Enter moves the calling thread, which the caller has locked
// (runtime.LockOSThread), into the network namespace bound at path and
// returns how to move it back.
func Enter(path string) (leave func() error, err error) {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("netns: current network namespace: %w", err)
	}
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(orig)
		return nil, fmt.Errorf("netns: network namespace %s: %w", path, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		unix.Close(orig)
		return nil, fmt.Errorf("netns: enter network namespace %s: %w", path, err)
	}
	return func() error {
		defer unix.Close(orig)
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netns: leave network namespace %s: %w", path, err)
		}
		return nil
	}, nil
}

// Dial connects to address from inside the namespace bound at path. The
// connection stays in that namespace.
func Dial(ctx context.Context, path, network, address string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread is left locked if leaving fails: the runtime then
		// ends it with the goroutine instead of reusing a thread that is
		// still in the namespace.
		runtime.LockOSThread()
		leave, err := Enter(path)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, address)
		if lerr := leave(); lerr != nil {
			if c != nil {
				c.Close()
			}
			ch <- result{err: lerr}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
