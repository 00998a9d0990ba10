//go:build !linux

package nftapply

import "context"

// NetlinkConn is nf_tables over netlink, which exists only on Linux.
type NetlinkConn struct {
	Netns string
}

// Commit implements NFTables: ErrNoNetlink.
func (NetlinkConn) Commit(context.Context, Batch) error { return ErrNoNetlink }

// swapBatch: no encoder off Linux.
func swapBatch(*ruleset, []string) (Batch, error) { return Batch{}, ErrNoNetlink }
