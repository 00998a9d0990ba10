// Package redundancy owns the redundancy-protocol side of a firewall pair:
// which node holds the shared address, and lowering this node's priority
// while it is impaired so the healthy peer takes over.
//
// CARP (OpenBSD): the role read from `ifconfig carpN` (ReadCARP,
// ParseCARP) and the group demotion counter (Demoter). VRRP (Linux,
// keepalived): the track file keepalived reads with "weight -1"
// (TrackFile) and the role, MASTER while one of the VRRP addresses is on
// the node (Role, LocalAddrs). Every command runs through an
// execrun.Runner given by the caller; names from the config are checked
// before they reach one.
package redundancy
