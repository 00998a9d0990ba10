package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// deleteNetns kills the processes in namespace name and deletes it.
func deleteNetns(ctx context.Context, name string) error {
	out, err := output(ctx, "ip", "netns", "pids", name)
	if err == nil {
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	return run(ctx, "ip", "netns", "delete", name)
}

// Sweep deletes the namespaces that earlier lab runs left behind: those
// named gwlab-<pid>-... whose pid no longer runs. Namespaces of live
// processes (other tests running now) are left alone. It returns the
// names it deleted.
func Sweep(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab: sweep: %w", err)
	}
	var gone []string
	var errs []error
	for _, e := range ents {
		pid, ok := ownerPID(e.Name())
		if !ok || pidAlive(pid) {
			continue
		}
		if err := deleteNetns(ctx, e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, e.Name())
	}
	return gone, errors.Join(errs...)
}

// ownerPID parses the pid out of gwlab-<pid>-<n>-<role>.
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, NamePrefix)
	if !ok {
		return 0, false
	}
	p, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// The open labs, closed on SIGINT/SIGTERM by one watcher goroutine that
// runs while at least one lab is open.
var reg struct {
	sync.Mutex
	labs      map[*Lab]struct{}
	stop      chan struct{}
	done      chan struct{}
	signalled bool // the watcher is closing the labs itself
}

func register(l *Lab) {
	reg.Lock()
	defer reg.Unlock()
	if reg.labs == nil {
		reg.labs = make(map[*Lab]struct{})
	}
	reg.labs[l] = struct{}{}
	if reg.stop != nil {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	stop, done := make(chan struct{}), make(chan struct{})
	reg.stop, reg.done = stop, done
	go func() {
		defer close(done)
		defer signal.Stop(sig)
		select {
		case <-stop:
		case s := <-sig:
			reg.Lock()
			reg.signalled = true
			reg.Unlock()
			closeAll()
			signal.Stop(sig)
			// Take the signal's default action now that the lab is gone.
			signal.Reset(s)
			_ = syscall.Kill(os.Getpid(), s.(syscall.Signal))
			// Should the process survive (signal ignored), do not hang.
			time.Sleep(time.Second)
			os.Exit(1)
		}
	}()
}

func closeAll() {
	reg.Lock()
	labs := make([]*Lab, 0, len(reg.labs))
	for l := range reg.labs {
		labs = append(labs, l)
	}
	reg.Unlock()
	for _, l := range labs {
		if err := l.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

// unregister forgets l; the last one stops the signal watcher and waits for it.
func unregister(l *Lab) {
	reg.Lock()
	delete(reg.labs, l)
	if len(reg.labs) > 0 || reg.stop == nil {
		reg.Unlock()
		return
	}
	stop, done, self := reg.stop, reg.done, reg.signalled
	reg.stop, reg.done = nil, nil
	reg.Unlock()
	if self {
		return // called by the watcher itself (closeAll on a signal)
	}
	close(stop)
	<-done
}
