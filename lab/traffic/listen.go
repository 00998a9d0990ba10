package traffic

import (
	"context"
	"fmt"
	"net"
	"syscall"
)

// ServerReadBuffer is the receive buffer ListenUDP asks for: the server
// echoes every flow of a run on one socket (20 flows × 100/s = 2 000
// datagrams/s), so the kernel's default (net.core.rmem_default, 212 992
// bytes: about 200 small datagrams, ~100 ms of them) overflows whenever
// the server goroutine waits ~100 ms for a CPU on a loaded machine, and
// those datagrams were counted as lost by the network. 8 MiB holds
// seconds of them.
const ServerReadBuffer = 8 << 20

// ListenUDP opens the server's UDP socket on addr with a receive buffer of
// size bytes: SO_RCVBUFFORCE where permitted (root, CAP_NET_ADMIN: the
// lab), else SO_RCVBUF, which the kernel caps at net.core.rmem_max.
func ListenUDP(ctx context.Context, addr string, size int) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = setReadBuffer(int(fd), size) }); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("traffic: udp %s: %w", addr, err)
	}
	return pc, nil
}
