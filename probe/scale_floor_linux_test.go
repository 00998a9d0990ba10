package probe_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BenchmarkScaleFloor is BenchmarkScale's floor: the same requests at the
// same rate, from the same source addresses to the same targets through
// the same namespaces, sent in the same bursts (one wake-up every
// min(interval/4, 50 ms), each link's 4 requests at its phase), by the
// least a Go program can do: one goroutine woken by a ticker, one raw
// socket per source, a plain sendto(2) per request, then a non-blocking
// recvfrom(2) until EAGAIN on the sockets it sent from (in the lab the
// replies are there when sendto returns: the gateway namespace answers
// inside it). No scheduler, tracker, state machine or receive goroutine.
// BenchmarkScale's cost minus this one is what the prober adds;
// GWSTATED_SCALE_NOREPLY=1 applies here too (the sending half only).
//
//	go test -run '^$' -bench 'Scale(Floor)?$' -benchtime 1x ./probe/   (root)
func BenchmarkScaleFloor(b *testing.B) {
	sl := startScaleLab(b)
	ctx := context.Background()
	fds := make([]int, scaleMaxLinks)
	err := inFw1(sl.l.NetnsPath("fw1"), func() error {
		for i, src := range sl.sources {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
			if err != nil {
				return err
			}
			fds[i] = fd
			if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
				return err
			}
		}
		return nil
	})
	b.Cleanup(func() {
		for _, fd := range fds {
			if fd > 0 {
				unix.Close(fd)
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, iv := range scaleIntervals {
		for _, n := range scaleLinks {
			b.Run(fmt.Sprintf("interval=%v/links=%d", iv, n), func(b *testing.B) {
				grid := min(iv/4, 50*time.Millisecond) // the prober's send grid
				slots := int(iv / grid)
				noReply := sl.noReply(ctx, b)
				ctx, cancel := context.WithCancel(ctx)
				var replies int
				var wg sync.WaitGroup
				wg.Go(func() { _, replies = floorSender(ctx, fds[:n], sl, grid, slots) })
				time.Sleep(time.Second) // settle: the measurement window starts with the sender running
				sl.measure(b, fmt.Sprintf("floor-%v-%d", iv, n))
				cancel()
				wg.Wait()
				b.ReportMetric(float64(n*scalePerLink)*float64(time.Second/iv), "probes/s")
				if !noReply && replies == 0 {
					b.Error("no replies: the floor is not measuring the answering path")
				}
			})
		}
	}
}

var rawFloor = os.Getenv("GWSTATED_FLOOR_RAW") == "1"

// floorSender sends every link's requests at its phase (link i of n in
// slot i·slots/n of the interval) until ctx ends and returns how many
// requests it sent and how many replies it read.
func floorSender(ctx context.Context, fds []int, sl *scaleLab, grid time.Duration, slots int) (sent, replies int) {
	n := len(fds)
	type req struct {
		pkt []byte
		to  unix.SockaddrInet4
		raw unix.RawSockaddrInet4
	}
	reqs := make([][]req, n)
	for i := range n {
		for j, a := range sl.targets[i] {
			pkt := make([]byte, 24) // as the prober's: 8 header + 16 payload
			pkt[0] = 8              // echo request
			binary.BigEndian.PutUint16(pkt[4:], uint16(0xf000+i*scalePerLink+j))
			binary.BigEndian.PutUint16(pkt[2:], floorChecksum(pkt))
			reqs[i] = append(reqs[i], req{pkt: pkt, to: unix.SockaddrInet4{Addr: a.As4()},
				raw: unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}})
		}
	}
	buf := make([]byte, 1500)
	tick := time.NewTicker(grid)
	defer tick.Stop()
	start := time.Now()
	for k := 0; ; k++ {
		if k*int(grid) >= int(time.Since(start)) { // else catch up: a ticker drops the ticks a loaded process misses
			select {
			case <-ctx.Done():
				return sent, replies
			case <-tick.C:
			}
		}
		slot := k % slots
		for i := range n {
			if i*slots/n != slot {
				continue
			}
			for _, r := range reqs[i] {
				sent++
				if rawFloor {
					_, _, _ = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fds[i]), uintptr(unsafe.Pointer(&r.pkt[0])), uintptr(len(r.pkt)), 0, uintptr(unsafe.Pointer(&r.raw)), unix.SizeofSockaddrInet4)
				} else {
					_ = unix.Sendto(fds[i], r.pkt, 0, &r.to)
				}
			}
			for {
				if rawFloor {
					n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fds[i]), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), unix.MSG_DONTWAIT, 0, 0)
					if e != 0 || int(n) < 0 {
						break
					}
				} else if _, _, err := unix.Recvfrom(fds[i], buf, unix.MSG_DONTWAIT); err != nil {
					break
				}
				replies++
			}
		}
	}
}

// inFw1 runs f on a thread in the network namespace at path.
func inFw1(path string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread dies with this goroutine
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(orig)
		ns, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(ns)
		if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		err = f()
		done <- errors.Join(err, unix.Setns(orig, unix.CLONE_NEWNET))
	}()
	return <-done
}

func floorChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
