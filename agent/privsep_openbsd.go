//go:build openbsd

package agent

import (
	"crypto/x509"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Restrict limits what this process can reach from now on: unveil(2) to the
// files in p (and the few system files in systemUnveils), then locks unveil,
// then, when p.Pledge is set, pledge(2) with Promises. Call it once, after
// the config is loaded, the state and pf directories exist, the embedded
// etcd member is started and (with Pledge) every probe socket is set up.
//
// Restrictions cannot be lifted: a SIGHUP reload that names a new key file,
// state dir or pf.dir fails with "no such file or directory" and needs a
// restart. Children (pfctl, route, ifconfig) start unrestricted: execve(2)
// clears unveil, and no execpromises are set.
func Restrict(p Paths) error {
	// Load what the Go runtime reads lazily from disk, before the veil:
	// the local time zone (/etc/localtime and the zoneinfo file it names)
	// for log timestamps, and the system CA bundle (/etc/ssl/cert.pem) in
	// case etcd TLS is used without tls.ca. A missing bundle is not an
	// error here: such a TLS client fails later naming the certificate.
	_ = time.Local.String()
	_, _ = x509.SystemCertPool()
	for _, r := range unveilRules(p) {
		if err := unix.Unveil(r.Path, r.Perms); err != nil {
			return fmt.Errorf("privsep: unveil %s %q: %w", r.Path, r.Perms, err)
		}
	}
	if err := unix.UnveilBlock(); err != nil {
		return fmt.Errorf("privsep: lock unveil: %w", err)
	}
	if !p.Pledge {
		return nil
	}
	promises := Promises()
	if p.Witness {
		promises = WitnessPromises()
	}
	// PledgePromises leaves execpromises unset, so children run unpledged.
	if err := unix.PledgePromises(promises); err != nil {
		return fmt.Errorf("privsep: pledge %q: %w", promises, err)
	}
	return nil
}
