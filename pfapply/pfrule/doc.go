// Package pfrule is a parser, loader and printer for the subset of pf.conf(5)
// that gwstated renders into its anchors, written from OpenBSD's own source
// so that tests and the drift check need no pfctl:
//
//	Compile(text, Options) -> *Ruleset   what pfctl(8) would load: parse.y's
//	                                     defaults (keep state, flags S/SA,
//	                                     inet/inet6 inferred), its checks, and
//	                                     collapse_redirspec's automatic tables
//	Print(rule)                          print_rule's output (pfctl -sr)
//	Equal(want, got, Options)            render -> load -> print -> parse -> compare
//
// Sources (openbsd/src, revision as in each file's $OpenBSD$ line):
//
//   - sbin/pfctl/parse.y 1.719 (2025/06/27): grammar of pfrule, filter_opts,
//     routespec/redirspec/pool_opts, the pfrule action (default keep state,
//     "flags S/SA by default on stateful rules"), expand_rule (flags cleared
//     for non-TCP protocols, port lists expanded into one rule each),
//     collapse_redirspec (two or more pool hosts become an anonymous const
//     table; "@if not permitted for routing"; "route spec requires :peer with
//     dynamic interface addresses"), apply_redirspec (round-robin is the
//     default pool type of a table or of a multi-address interface) and
//     rule_consistent (route-to needs state, match rules cannot route,
//     nat-to needs a direction, ports need tcp/udp).
//   - sbin/pfctl/parse.y 1.584 (2010/01/12): the legacy route_host forms
//     "route-to fxp0" and "route-to (fxp0 198.51.100.100)" (interface must
//     exist) that pfctl accepted until the February 2021 change of 6.9; that
//     collapse_redirspec also turned several pool hosts into a table, keeping
//     each host's interface.
//   - sbin/pfctl/pfctl_parser.c 1.352 (2024/11/12): print_rule (field order:
//     action, in/out, log, quick, on, inet/inet6, proto, from/to or all,
//     flags or "flags any", no state, label, nat-to, route-to),
//     print_fromto, print_port (numbers unless -P), print_pool ("addr@if"
//     for a pool with an interface), print_tabledef.
//   - sbin/pfctl/pf_print_state.c 1.59 (2011/10/13): print_addr ("any",
//     "/bits" only below the host length, "(if)", "<table>").
//   - sbin/pfctl/pfctl_optimize.c 1.29 (2011/07/27): add_opt_table and
//     pf_opt_create_table name the tables "__automatic_%x_%d" (a random
//     identifier per pfctl run, then a counter from 0) and define them const
//     in the anchor being loaded.
//   - sbin/pfctl/pfctl_table.c 1.91 (2024/11/20): print_addrx, the line
//     format of "pfctl -t T -T show" ("%c %c%s" then "@ifname").
//
// Only what gwstated writes (pass/match/block rules, table definitions, the
// options label, flags, keep/no state, nat-to, route-to/reply-to/dup-to with
// round-robin and sticky-address) is accepted; anything else is refused as
// outside the emulated subset rather than guessed.
package pfrule
