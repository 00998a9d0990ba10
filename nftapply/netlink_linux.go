//go:build linux

package nftapply

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// NetlinkConn sends nf_tables batches over a netlink socket of its own,
// one per Commit. With Netns set, the socket is opened in that named
// network namespace (/run/netns/NETNS), as ExecRunner{Netns} runs its
// commands there: tests and the lab drive a namespace from outside. The
// agent, running inside its namespace, leaves it empty.
type NetlinkConn struct {
	Netns string
}

// commitTimeout bounds the wait for the kernel's answers when ctx has no
// deadline (the kernel answers while the batch is sent; this never waits
// in practice).
const commitTimeout = 10 * time.Second

// Commit implements NFTables: the messages of b between a batch begin and
// end, every one asking for an acknowledgement; the first refusal is the
// error (the kernel then aborted the whole transaction). A CheckOnly batch
// has no end: the kernel checks it and aborts it.
func (n NetlinkConn) Commit(ctx context.Context, b Batch) error {
	if len(b.msgs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg := &netlink.Config{}
	if n.Netns != "" {
		f, err := openNetns(n.Netns)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer c.Close()
	_ = c.SetOption(netlink.ExtendedAcknowledge, true) // the kernel's message with its errno, when it has one
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(commitTimeout)
	}
	if err := c.SetDeadline(deadline); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}

	frame := []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES} // res_id: subsystem, big-endian
	msgs := make([]netlink.Message, 0, len(b.msgs)+2)
	msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: unix.NFNL_MSG_BATCH_BEGIN, Flags: netlink.Request}, Data: frame})
	for _, m := range b.msgs {
		msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(m.typ), Flags: netlink.HeaderFlags(m.flags)}, Data: m.data})
	}
	if !b.check {
		msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: unix.NFNL_MSG_BATCH_END, Flags: netlink.Request}, Data: frame})
	}
	if _, err := c.SendMessages(msgs); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	// One acknowledgement (an error message with errno 0) per message;
	// netlink.Conn turns a refusal into an error.
	for acked := 0; acked < len(b.msgs); {
		reply, err := c.Receive()
		if err != nil {
			return fmt.Errorf("nf_tables refused the batch (table inet %s, chains %s): %w", b.Table, strings.Join(b.Chains, ", "), err)
		}
		for _, m := range reply {
			if m.Header.Type == netlink.Error {
				acked++
			}
		}
	}
	return nil
}
