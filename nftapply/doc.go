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
// Why exec nft(8) and ip(8) rather than github.com/google/nftables and
// github.com/vishvananda/netlink:
//
//   - Atomicity: `nft -f` loads "table; delete table; table {...}" as one
//     netlink batch, one kernel transaction: packets see the old table or
//     the new one, never a mix. The library builds the same batch, with no
//     gain.
//   - What an admin sees: Render writes the table exactly as
//     `nft list table inet gwstated` prints it, so the golden files, the
//     text Apply loads, gwctl render's output and the kernel's listing are
//     one text, and drift is a text comparison. With the library the table
//     would be built from expressions that no golden file or admin reads.
//   - Error text: nft reports the offending line and column of the text;
//     `nft -c` (or the `nft -f` transaction itself, when nothing precedes
//     it) validates the whole change with the kernel's own parser and the
//     same message, before anything is touched.
//   - Testability: every kernel write is one Runner call with an argument
//     list (never a shell), so tests count writes with a recording Runner
//     and run the real commands inside network namespaces.
//   - Speed: exec is the cost (a few ms idle, 50-150 ms each on a loaded
//     machine), so a transition runs as few processes as its order
//     allows: a link failure is nft -f, conntrack -D, one ip -batch (the
//     table and the state kill, which move the flows, first); a recovery
//     is ip -batch, nft -f, ip -batch. nft -c runs only when routes or
//     rules must precede a table nft has not accepted before; the agent
//     validates the tables one link change away ahead (Prevalidate, a
//     cache by hash). BenchmarkApply and BenchmarkExecBaseline measure it.
//     netlink would save the remaining execs but not the transaction.
//
// conntrack entries are deleted with conntrack(8) (-D --mark M), for the
// same reasons.
package nftapply
