//go:build !linux

package traffic

import "syscall"

func setReadBuffer(fd, size int) error {
	return syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
}
