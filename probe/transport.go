package probe

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ErrNoPrivilege is returned (wrapped) when raw ICMP sockets are refused.
var ErrNoPrivilege = errors.New("raw ICMP sockets are not permitted: run as root or grant CAP_NET_RAW (setcap cap_net_raw+ep on the binary); on OpenBSD run as root")

// Spec is what a Transport needs to probe one target.
type Spec struct {
	Link      string
	Interface string     // the link's interface: its address is the source when Source is not set
	Source    netip.Addr // send from this address (nodes.<name>.probe_source.<link>)
	Target    netip.Addr
	Interval  time.Duration // between requests
	Offset    time.Duration // before the first request
}

// Handler receives a target's events. Sequence numbers increase by one per
// request over the whole life of the target, across socket restarts.
type Handler interface {
	Sent(seq uint64, at time.Time)
	Replied(seq uint64, rtt time.Duration, at time.Time)
	SendFailed(seq uint64, at time.Time, err error)
}

// Transport sends echo requests. Ping probes spec.Target every
// spec.Interval, the first after spec.Offset, until ctx ends (then it
// returns nil), reporting to h. It returns an error when the target cannot
// be probed at all (no source address, socket refused: wrap
// ErrNoPrivilege); the prober then marks the target down and calls Ping
// again after a back-off.
type Transport interface {
	Ping(ctx context.Context, spec Spec, h Handler) error
}
