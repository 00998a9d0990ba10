// Package clustertest starts real etcd clusters inside a test process: N
// embedded members (go.etcd.io/etcd/server/v3/embed) on free loopback
// ports, data in t.TempDir, quiet logs, short raft ticks, each member
// stoppable and restartable so tests can take quorum away and give it back.
// Everything is stopped at t.Cleanup.
//
// It is test support for cluster/ and for any package that needs an etcd
// (gwctl, agent); it is never linked into the binaries.
package clustertest
