package probe

import (
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// shareSockets: on Linux one raw socket per IP version serves every
// source, each request naming its source in an IP_PKTINFO (IPv4) or
// IPV6_PKTINFO (IPv6) control message.
const shareSockets = true

// srcControl is the control message that sends a request from src (out
// of interface ifindex, for a link-local source).
func srcControl(src netip.Addr, ifindex int, v6 bool) []byte {
	if v6 {
		cm := ipv6.ControlMessage{Src: src.AsSlice(), IfIndex: ifindex}
		return cm.Marshal()
	}
	cm := ipv4.ControlMessage{Src: src.AsSlice(), IfIndex: ifindex}
	return cm.Marshal()
}
