//go:build linux

package nftapply

import "net/netip"

// WithJumpToMissingChain is b with one more rule, in its first chain,
// jumping to a chain the table lacks: a batch the kernel refuses as a
// whole, at its last message.
func WithJumpToMissingChain(b Batch) Batch {
	e := encoder{table: b.Table, msgs: append([]nlMsg(nil), b.msgs...)}
	if err := e.rule(b.Chains[0], nftRule{kind: ruleJump, ifname: "eth0", lan: mustPrefix("192.168.0.0/24"), target: "nosuchchain"}); err != nil {
		panic(err)
	}
	b.msgs = e.msgs
	return b
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
