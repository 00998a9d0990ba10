package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Process is one program the harness runs in a namespace, its output
// appended to LogPath (over restarts).
type Process struct {
	Name    string
	Role    string // namespace
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid is the process id (of the program itself: `ip netns exec` execs it).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// AgentLog is the path of a node's agent log (JSON lines).
func (c *Cluster) AgentLog(node string) string { return filepath.Join(c.opt.Dir, node+".log") }

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.opt.Log, "lab: "+format+"\n", args...)
}

// StartAgent starts (or restarts) node's gwstated in its namespace:
// `gwstated --config F --node N --dry-run --state-dir D --log-format json`,
// plus --witness for the witness; with the nft data plane without
// --dry-run, on the firewall's own copy of the config (linuxcluster.go).
func (c *Cluster) StartAgent(node string) error {
	args := []string{"--config", c.agentConfig(node), "--node", node,
		"--state-dir", c.NodeDir(node), "--log-format", "json", "--log-level", c.opt.LogLevel}
	if c.opt.Dataplane != DataplaneNFT {
		args = append(args, "--dry-run")
	}
	if node == Witness {
		args = append(args, "--witness")
	} else if c.pfMode() {
		if err := c.initPFEmu(node); err != nil {
			return err
		}
		args = append(slices.DeleteFunc(args, func(a string) bool { return a == "--dry-run" }), c.agentPFArgs(node)...)
	}
	return c.startProc(node, node, c.AgentLog(node), c.opt.Bin.Gwstated, args)
}

// StartEtcd starts (or restarts) the separately started etcd member of
// node (EtcdSeparate), in node's namespace on its sync address.
func (c *Cluster) StartEtcd(node string) error {
	var initial []string
	for _, n := range []string{FW1, FW2, Witness} {
		initial = append(initial, fmt.Sprintf("%s=http://%s:2380", n, c.Lab.SyncAddr(n)))
	}
	sync := c.Lab.SyncAddr(node).String()
	args := []string{"--name", node, "--data-dir", filepath.Join(c.opt.Dir, "etcd-"+node),
		"--peer-url", "http://" + sync + ":2380", "--client-url", "http://" + sync + ":2379",
		"--initial-cluster", strings.Join(initial, ",")}
	return c.startProc("etcd-"+node, node, filepath.Join(c.opt.Dir, "etcd-"+node+".log"), c.opt.Bin.Etcd, args)
}

func (c *Cluster) startProc(name, role, logPath, bin string, args []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil && p.Running() {
		return fmt.Errorf("lab: %s is already running (pid %d)", name, p.Pid())
	}
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	cmd := c.Lab.Command(context.Background(), role, bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("lab: start %s: %w", name, err)
	}
	p := &Process{Name: name, Role: role, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	c.procs[name] = p
	// The waiter is owned by p: Kill, Stop and Close wait for p.done.
	go func() {
		_ = cmd.Wait() // its exit status is not used: its output is in LogPath
		f.Close()
		close(p.done)
	}()
	c.logf("started %s in %s (pid %d)", name, role, p.Pid())
	return nil
}

// Proc returns the process named name (fw1, witness, etcd-fw1, ...), or nil.
func (c *Cluster) Proc(name string) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[name]
}

// Kill sends SIGKILL to the process named name and waits for it to exit.
func (c *Cluster) Kill(name string) error { return c.signal(name, syscall.SIGKILL, 0) }

// Stop sends SIGTERM to the process named name and waits for it to exit,
// killing it after timeout.
func (c *Cluster) Stop(name string, timeout time.Duration) error {
	return c.signal(name, syscall.SIGTERM, timeout)
}

func (c *Cluster) signal(name string, sig syscall.Signal, timeout time.Duration) error {
	p := c.Proc(name)
	if p == nil {
		return fmt.Errorf("lab: no process %s", name)
	}
	if !p.Running() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	if timeout > 0 {
		select {
		case <-p.done:
			c.logf("stopped %s (%v)", name, sig)
			return nil
		case <-time.After(timeout):
			_ = p.cmd.Process.Kill()
		}
	}
	<-p.done
	c.logf("killed %s", name)
	return nil
}

// Close stops every process (agents first, with SIGTERM, then etcd) and
// waits for them. The lab itself is left to its owner.
func (c *Cluster) Close() error {
	c.mu.Lock()
	names := make([]string, 0, len(c.procs))
	for n := range c.procs {
		names = append(names, n)
	}
	c.mu.Unlock()
	// agents before etcd, so they resign while etcd is there
	slices.SortFunc(names, func(a, b string) int {
		ea, eb := strings.HasPrefix(a, "etcd-"), strings.HasPrefix(b, "etcd-")
		if ea != eb {
			if ea {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	var errs []error
	for _, n := range names {
		if err := c.Stop(n, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
