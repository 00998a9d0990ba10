// Package etcdmember runs this node's etcd member inside the agent
// (cluster.etcd.embed). It is the only package that links the etcd server,
// kept apart from package cluster so that gwctl, which dials etcd but never
// serves it, does not carry the server and its init-time metrics.
package etcdmember
