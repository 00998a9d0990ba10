// Package redundancy holds what gwstated does with the redundancy protocol
// that moves the shared addresses between the nodes: keepalived VRRP on
// Linux (a track file for demotion, the role read from the node's
// addresses). CARP on OpenBSD is in pfapply (carp.go) until the structure
// refactor moves it here.
package redundancy
