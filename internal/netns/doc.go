// Package netns runs code inside a Linux network namespace bound at a path
// (ip netns add NAME binds /var/run/netns/NAME): a goroutine locks its OS
// thread, setns(2)s into the namespace, does its work and setns(2)s back.
// A socket opened inside keeps its namespace after the thread leaves, which
// is how the prober and the lab reach addresses that exist only there.
// Elsewhere than Linux every call returns ErrUnsupported.
package netns
