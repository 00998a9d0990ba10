//go:build !linux

package probe

import "net/netip"

// shareSockets: elsewhere (OpenBSD) each source has a raw socket of its
// own, bound to its address. OpenBSD's raw IPv4 sockets take no source
// address per packet (IP_SENDSRCADDR is for UDP), and binding works
// everywhere.
const shareSockets = false

// srcControl is not needed where sockets are bound.
func srcControl(netip.Addr, int, bool) []byte { return nil }
