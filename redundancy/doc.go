// Package redundancy owns the redundancy-protocol side of a firewall pair:
// which node holds the shared address, and lowering this node's priority
// while it is impaired so the healthy peer takes over.
//
// CARP (OpenBSD) now: the role read from `ifconfig carpN` (ReadCARP,
// ParseCARP) and the group demotion counter (Demoter). VRRP (Linux,
// keepalived: the track file and the role from the VRRP addresses) comes
// next, beside it. Every command runs through an execrun.Runner given by
// the caller; names from the config are checked before they reach one.
package redundancy
