//go:build !linux

package nftapply

import (
	"context"
	"errors"
)

// NetlinkKiller deletes conntrack entries over ctnetlink; Linux only.
type NetlinkKiller struct{}

// OpenNetlinkKiller fails: ctnetlink is Linux's.
func OpenNetlinkKiller(netns string) (*NetlinkKiller, error) {
	return nil, errors.New("ctnetlink is Linux-only")
}

// KillMark implements StateKiller; never reached (no NetlinkKiller opens).
func (k *NetlinkKiller) KillMark(ctx context.Context, family int, mark uint32) (int, error) {
	return 0, errors.New("ctnetlink is Linux-only")
}
