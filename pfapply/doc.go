// Package pfapply turns a verdict into pf state and puts it in place.
//
// Render is pure: from the configuration and a linkstate.Verdict it builds
// the Ruleset (every anchor gwstated owns, in load order, the default route
// and a hash), with no I/O and no clock, so every node with the same verdict
// and configuration renders the same text and reports the same hash. Two pf
// dialects: openbsd (6.9 and later, route-to takes addresses) and legacy
// (route-to (if addr)).
//
// Apply and the backends hold the side effects: they load the anchors whose
// text changed (pfctl on OpenBSD, files in a directory for the lab, tests
// and dry runs), set the default route and kill the states of links that
// left, with every command run through an execrun.Runner given by the
// caller. CARP roles and demotion live in package redundancy.
package pfapply
