package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ErrSNMP is returned for /proc/net/snmp text ParseUDPStats cannot read.
var ErrSNMP = errors.New("unreadable /proc/net/snmp")

// UDPStats returns the Udp counters (InDatagrams, RcvbufErrors, ...) of
// the network namespace the process named name runs in (its
// /proc/<pid>/net/snmp): RcvbufErrors counts the datagrams the kernel
// dropped because a socket's receive buffer was full — a receiver that
// did not get the CPU in time.
func (c *Cluster) UDPStats(name string) (map[string]uint64, error) {
	p := c.Proc(name)
	if p == nil || !p.Running() {
		return nil, fmt.Errorf("lab: no running process %s", name)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/snmp", p.Pid()))
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	return ParseUDPStats(f)
}

// ParseUDPStats reads the "Udp:" header and value lines of /proc/net/snmp.
func ParseUDPStats(r io.Reader) (map[string]uint64, error) {
	sc := bufio.NewScanner(r)
	var head []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f[1:]
			continue
		}
		if len(f)-1 != len(head) {
			return nil, fmt.Errorf("%w: %d Udp values for %d names", ErrSNMP, len(f)-1, len(head))
		}
		out := make(map[string]uint64, len(head))
		for i, v := range f[1:] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: Udp %s: %w", ErrSNMP, head[i], err)
			}
			out[head[i]] = n
		}
		return out, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: no Udp lines", ErrSNMP)
}
