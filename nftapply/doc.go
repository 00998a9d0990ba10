// Package nftapply is gwstated's Linux data plane: nftables, policy
// routing and conntrack, the counterpart of pfapply.
//
// Render is pure: configuration + verdict → Plan (the complete
// "inet gwstated" table, the per-link routing tables and ip rules, the
// main default route and a hash). Apply puts a Plan in place through a
// Runner and keeps track of what the kernel holds, so an unchanged verdict
// costs no kernel write; Repair re-reads the kernel and fixes drift; Check
// refuses a host where nftables or policy routing is missing or where
// gwstated's marks, tables or rule priorities are already used.
//
// The table: nft -f for loads, a netlink rule swap for the hot path.
// nft(8) loads the table (the first load, and any change of its skeleton:
// chains, types, hooks, priorities, policies, comment), because:
//
//   - Atomicity: `nft -f` loads "table; delete table; table {...}" as one
//     netlink batch, one kernel transaction: packets see the old table or
//     the new one, never a mix.
//   - What an admin sees: Render writes the table exactly as
//     `nft list table inet gwstated` prints it, so the golden files, the
//     text Apply loads, gwctl render's output and the kernel's listing are
//     one text, and drift is a text comparison.
//   - Error text: nft reports the offending line and column of the text;
//     `nft -c` (or the `nft -f` transaction itself, when nothing precedes
//     it) validates the whole change with the kernel's own parser and the
//     same message, before anything is touched.
//
// A link state change only changes rules inside chains. For it, with
// Options.NFTables set (the agent's NetlinkConn), Apply sends one
// nf_tables batch in-process: for each chain whose rules differ, flush it
// and add its new rules (swap.go, encode_linux.go). Why: a process costs
// 20 ms of mostly page faults and libnftables start-up even on a quiet
// machine here, 50-150 ms on a loaded one, and it is on the packet path
// of every failure; the swap is one transaction too (atomic: a refused
// batch changes nothing) and costs no process. The text stays the
// contract: Render builds the rules once as data (ruleset.go) and writes
// both the text and, from the same list, the expressions — the nf_tables
// messages nft itself sends for that text (anonymous sets with nft's
// byte-order userdata, rule comments), so `nft list table` prints
// Render's text either way; the tests compare the listing after a swap
// with nft's own listing after nft -f of the same text. The table object
// is not touched, so its comment stays. A swap the kernel refuses is
// logged and the table loaded with nft -f, which reports nft's error
// text. The swap needs the kernel's table to have the skeleton of the
// new one (compared as text), so anything unexpected falls back to nft -f;
// Repair always loads with nft -f (it converges whatever nft lists).
//
// Every process is one Runner call with an argument list (never a shell),
// so tests count them with a recording Runner and run the real commands
// inside network namespaces. With the agent's writers (the swap, and the
// in-process route, rule and conntrack writes below) a link failure and a
// recovery run no process at all; with the exec ones a failure is nft -f,
// conntrack -D, one ip -batch (the table and the state kill, which move
// the flows, first) and a recovery ip -batch, nft -f, ip -batch. When routes or rules must precede a table not accepted before,
// the swap's batch is first sent as a check (without its batch end the
// kernel validates it and aborts it), nft -c only when there is no swap;
// the agent validates the tables one link change away ahead (Prevalidate,
// a cache by hash). BenchmarkApply
// (writes=netlink, writes=exec) and BenchmarkExecBaseline measure it.
//
// Routes and rules (steps 2 and 5 of Apply) are written in-process over
// rtnetlink (NetlinkRouteWriter, github.com/vishvananda/netlink), one
// request per op, as ip route replace / ip rule add|del send them: the
// same kernel state, and the same semantics as one `ip -force -batch`
// (every op tried, each failure named by the kernel's error; the exec
// writer, ExecRouteWriter, stays the Applier's default and the agent's
// fallback, and TestRouteWritersAgree holds the two to the same result).
// No atomicity is lost: an ip -batch was never one transaction either.
//
// The conntrack entries of a dead link are deleted in-process over
// ctnetlink (NetlinkKiller, github.com/ti-mo/conntrack), not with
// conntrack(8): they sit on the client's critical path (a flow on the
// failed link moves only once its entry, NAT'd to the dead link's
// address, is gone), and a process costs 20 ms on a quiet machine here
// and 30-90 ms under load, for what is one kernel request. The request is
// IPCTNL_MSG_CT_DELETE with no tuple but CTA_MARK, CTA_MARK_MASK
// 0xffffffff and the family in an nfgenmsg of version 1: the kernel runs
// it as a flush with a filter, one pass over the table, deleting exactly
// the entries of that family whose mark equals the link's — conntrack -D
// -f F --mark M's semantics, which dumps the table and deletes entry by
// entry. The mark filter on a flush is older; the family is honoured from
// Linux 5.3 (earlier kernels would delete the other family's entries with
// that mark too), so OpenNetlinkKiller refuses older kernels. No entry is
// no error, as conntrack -D's exit 1 on "0 flow entries" is not one.
// ti-mo/conntrack rather than vishvananda/netlink: the latter only
// deletes by dumping the whole table into the process and deleting each
// match with its own request (ConntrackDeleteFilters); ti-mo/conntrack has
// the kernel-side filtered flush (Conn.FlushFilter) and opens its socket
// in a given network namespace (tests and the lab drive a namespace from
// outside). ExecKiller (conntrack -D through the Runner) stays the
// Applier's default and the agent's fallback when ctnetlink cannot be
// opened; Result.Commands counts processes, so an in-process deletion
// counts none.
package nftapply
