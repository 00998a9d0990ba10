package probe

import (
	"errors"
	"net/netip"
	"time"
)

// ErrNoPrivilege is returned (wrapped) when raw ICMP sockets are refused.
var ErrNoPrivilege = errors.New("raw ICMP sockets are not permitted: run as root or grant CAP_NET_RAW (setcap cap_net_raw+ep on the binary); on OpenBSD run as root")

// Spec describes one probed target (Prober.Specs).
type Spec struct {
	Link      string
	Interface string     // the link's interface: its address is the source when Source is not set
	Source    netip.Addr // send from this address (nodes.<name>.probe_source.<link>)
	Target    netip.Addr
	Interval  time.Duration // between requests
	Offset    time.Duration // before the first request
}

// Source is where an Endpoint sends from: Addr, or when Addr is not set
// the first address of Interface of the IP version V6 (global before
// link-local; link-local only for link-local targets).
type Source struct {
	Link      string // for messages
	Interface string
	Addr      netip.Addr
	V6        bool
	LinkLocal bool // a link-local address will do (the link probes a link-local target)
}

// Reply is an echo reply received by an Endpoint.
type Reply struct {
	From netip.Addr
	ID   uint16 // the echo identifier the request was sent with
	Seq  uint64
	At   time.Time // when it arrived (the kernel's receive time, where known), else when it was read
}

// Transport opens endpoints that send echo requests and receive the
// replies. The Prober opens one per source address and IP version — not
// one per target — and tells its targets apart by echo identifier.
type Transport interface {
	// Open returns an endpoint sending from src. Every echo reply it
	// receives is passed to recv (from a goroutine the endpoint owns and
	// Close waits for, or from Poll: see Poller), whatever its identifier: recv ignores the ones it
	// does not know. Open fails when the source cannot be used (no
	// address, bind refused: the prober retries with back-off) or raw
	// ICMP is refused (wrap ErrNoPrivilege: the prober stops).
	Open(src Source, recv func(Reply)) (Endpoint, error)
}

// Poller is implemented by a Transport whose endpoints may leave replies
// queued rather than read them as they come: the prober calls Poll(now)
// at every wake-up of its scheduler before it looks at any deadline, and
// Poll hands every reply that arrived before now to its endpoint's recv,
// from the caller's goroutine, with Reply.At the time it arrived (the
// kernel's receive time) — so a reply read late still counts from when it
// came. Poll is not called concurrently with itself.
type Poller interface {
	Poll(now time.Time)
}

// BatchSender is implemented by a Transport that sends many requests with
// one system call: the prober hands it each wake-up's requests at once.
// SendBatch sets each request's Err (a failed request is a miss, as from
// Endpoint.Send); EP is an Endpoint the transport opened.
type BatchSender interface {
	SendBatch(rs []Request)
}

// Request is one echo request of a batch.
type Request struct {
	EP  Endpoint
	Dst netip.Addr
	ID  uint16
	Seq uint64
	Err error
}

// Endpoint is one source: a socket of its own, or a share of one.
type Endpoint interface {
	// Send sends echo request seq with identifier id to dst. An error
	// (no route, ...) makes the request a miss.
	Send(dst netip.Addr, id uint16, seq uint64) error
	// Close stops receiving and waits until recv is no longer called.
	Close() error
}
