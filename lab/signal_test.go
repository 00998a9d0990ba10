package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// SIGINT tears the lab down: a child test process builds a lab, prints its
// namespaces and blocks; the parent interrupts it and checks they are gone.
func TestSignalTeardown(t *testing.T) {
	if os.Getenv("GWSTATED_LAB_CHILD") == "signal" {
		l, err := New(context.Background(), Options{ISPs: 1, Firewalls: 1, NoWitness: true, NoLAN: true})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(l.Netns("fw1"), l.Netns("isp1"))
		io.Copy(io.Discard, os.Stdin) // until the parent closes stdin or signals
		t.Fatal("not interrupted")
	}
	Require(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignalTeardown$")
	cmd.Env = append(os.Environ(), "GWSTATED_LAB_CHILD=signal")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %v", err)
	}
	names := strings.Fields(line)
	for _, n := range names {
		if _, err := os.Stat(NetnsDir + "/" + n); err != nil {
			t.Fatalf("child's namespace %s: %v", n, err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("child ended with %v, want killed by SIGINT after cleanup", err)
	}
	for _, n := range names {
		if _, err := os.Stat(NetnsDir + "/" + n); !os.IsNotExist(err) {
			t.Errorf("namespace %s survived SIGINT (%v)", n, err)
			exec.Command("ip", "netns", "delete", n).Run()
		}
	}
}
