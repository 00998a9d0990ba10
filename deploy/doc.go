// Package deploy holds what an admin installs next to the gwstated and
// gwctl binaries: the OpenBSD rc.d(8) script and install steps (openbsd/);
// the Linux systemd units for a router and a witness (linux/) and the
// Debian packaging that ships them (debian/, make deb); Prometheus alerting
// rules with their unit tests and an example scrape config (prometheus/);
// a Grafana dashboard (grafana/); an example pf.conf and example
// gwstated.yaml files with the anchors they render to (examples/,
// examples/golden/); and the man pages gwstated(8), gwctl(8) and
// gwstated.yaml(5) (man/). Makefile.inc holds the man, dist and deb
// targets.
//
// It has no Go API. Its tests keep those files true: every example config
// passes the validator for each of its nodes and renders, for every
// combination of links up and down, the anchors in its golden file (update
// with go test ./deploy -update, then read the diff); the rendered rules and
// the example pf.conf pass the independent pf grammar checker; every man
// page is free of mandoc -T lint warnings and documents every config key,
// gwctl subcommand, command-line flag and metric; the rc.d script parses;
// the alerts pass promtool test rules and, like the dashboard's
// expressions, parse and name only series the agent exports; the systemd
// units pass systemd-analyze verify, keep their exposure score, and grant
// capabilities that suffice; make deb gives reproducible packages that
// lintian accepts without errors.
package deploy
