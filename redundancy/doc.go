// Package redundancy owns the redundancy-protocol side of a firewall pair:
// which node holds the shared address, and lowering this node's priority
// while it is impaired so the healthy peer takes over.
//
// CARP (OpenBSD): the role read from `ifconfig carpN` (ReadCARP,
// ParseCARP) and the group demotion counter (Demoter). VRRP (Linux,
// keepalived): the track file keepalived reads with "weight -1"
// (TrackFile) and the role, MASTER while one of the VRRP addresses is on
// the node (Role, LocalAddrs); and conntrackd's primary-backup hand-off
// for a pair that syncs its connections (HandoffSteps, Handoff: run by
// `gwctl ctsync` from keepalived's notify lines). CARP's demotion bounds
// are OpenBSD's: ifconfig's carpdemote takes 0-128 (sbin/ifconfig/ifconfig.c 1.476) and
// the kernel keeps a group's counter within 0-255 (sys/net/if.c 1.741); a
// refused change is a DemoteError with the counter, retried later. Every
// command runs through an execrun.Runner given by the caller; names from
// the config are checked before they reach one.
package redundancy
