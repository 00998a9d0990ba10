// Package deploy holds what an OpenBSD admin installs next to the gwstated
// and gwctl binaries: the rc.d(8) script and install steps (openbsd/), an
// example pf.conf and example gwstated.yaml files with the anchors they
// render to (examples/, examples/golden/), and the man pages gwstated(8),
// gwctl(8) and gwstated.yaml(5) (man/). Makefile.inc holds the man and dist
// targets.
//
// It has no Go API. Its tests keep those files true: every example config
// passes the validator for each of its nodes and renders, for every
// combination of links up and down, the anchors in its golden file (update
// with go test ./deploy -update, then read the diff); the rendered rules and
// the example pf.conf pass the independent pf grammar checker; every man
// page is free of mandoc -T lint warnings and documents every config key,
// gwctl subcommand and command-line flag; the rc.d script parses.
package deploy
