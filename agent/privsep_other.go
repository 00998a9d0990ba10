//go:build !openbsd

package agent

// Restrict does nothing outside OpenBSD: unveil(2) and pledge(2) exist only
// there. Linux (the lab, CI, dry runs) runs unrestricted.
func Restrict(Paths) error { return nil }
