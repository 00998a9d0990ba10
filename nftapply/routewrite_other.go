//go:build !linux

package nftapply

import (
	"context"
	"errors"
)

// NetlinkRouteWriter writes routes and rules over rtnetlink; Linux only.
type NetlinkRouteWriter struct{}

// OpenNetlinkRouteWriter fails: rtnetlink is Linux's.
func OpenNetlinkRouteWriter(netns string) (*NetlinkRouteWriter, error) {
	return nil, errors.New("rtnetlink is Linux-only")
}

func (w *NetlinkRouteWriter) writeOps(ctx context.Context, family int, ops []ipOp) (map[int]string, int, error) {
	return nil, 0, errors.New("rtnetlink is Linux-only")
}
