package clustertest

import "go.uber.org/goleak"

// IgnoreEtcd returns the goleak options for goroutines that outlive a
// stopped embedded etcd member by a few seconds. Anything else left running
// is a leak.
//
// When a member closes, the raft peer HTTP connections (rafthttp streams
// between members) are torn down by net/http's abortPendingRead, which sets
// a read deadline in the past; etcd's transport.timeoutConn re-arms its own
// read deadline (rafthttp's 5 s ConnReadTimeout) on every Read, so the
// server's background read, the server conn waiting for it, and the peer's
// client persistConn loops linger for up to 5 s after Close — longer than
// goleak's retry window. They hold no member state and end by themselves.
//
// Stop hard-stops a member's raft node before closing it (so quorum loss
// is immediate); a peer's /version probe that arrives in between can stay
// blocked on the closed backend's read lock. It serves nothing and holds
// only the stopped member's memory.
func IgnoreEtcd() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("go.etcd.io/etcd/client/pkg/v3/transport.timeoutConn.Read"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).abortPendingRead"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("go.etcd.io/etcd/server/v3/etcdserver/api/etcdhttp.newPeerHandler.versionHandler.func1"),
	}
}
