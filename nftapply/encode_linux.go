//go:build linux

package nftapply

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The encoder writes a rule swap as the nf_tables messages nft(8) itself
// sends for the same text (nft --debug=netlink shows them), so that
// `nft list table` prints the text Render wrote: the same expressions,
// the same anonymous sets with nft's userdata (key and data byte order),
// the same rule comment userdata. It is pure: bytes in, bytes out.

// nft's datatypes (nftables include/datatype.h) and byte orders, as it
// writes them in a set's key/data type and userdata.
const (
	nftTypeInteger     = 4
	nftTypeInetService = 13
	nftTypeMark        = 19

	byteorderHost = 1
	byteorderBig  = 2

	// libnftnl udata TLV types.
	udataRuleComment      = 0
	udataSetKeyByteorder  = 0
	udataSetDataByteorder = 1
)

const famINet = unix.NFPROTO_INET

// swapBatch encodes, for each chain of chains, a flush of the chain and
// its rules from rs.
func swapBatch(rs *ruleset, chains []string) (Batch, error) {
	b := Batch{Table: rs.name, Chains: chains}
	e := encoder{table: rs.name}
	for _, name := range chains {
		i := slices.IndexFunc(rs.chains, func(c chain) bool { return c.name == name })
		if i < 0 {
			return Batch{}, fmt.Errorf("chain %q is not in table %s", name, rs.name)
		}
		e.msg(unix.NFT_MSG_DELRULE, 0, attr(unix.NFTA_RULE_TABLE, cstr(rs.name)), attr(unix.NFTA_RULE_CHAIN, cstr(name)))
		for _, r := range rs.chains[i].rules {
			if err := e.rule(name, r); err != nil {
				return Batch{}, fmt.Errorf("chain %s: %q: %w", name, r.text(), err)
			}
		}
	}
	b.msgs = e.msgs
	return b, nil
}

type encoder struct {
	table string
	msgs  []nlMsg
	setID uint32
}

func attr(typ uint16, data []byte) netlink.Attribute { return netlink.Attribute{Type: typ, Data: data} }

func nested(typ uint16, attrs ...netlink.Attribute) netlink.Attribute {
	return netlink.Attribute{Type: unix.NLA_F_NESTED | typ, Data: marshal(attrs...)}
}

func marshal(attrs ...netlink.Attribute) []byte {
	b, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		panic(err) // only for attributes over 64 KiB, which nothing here makes
	}
	return b
}

func cstr(s string) []byte { return append([]byte(s), 0) }

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// host32 is v in host byte order: marks and numgen values in registers.
func host32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// msg appends an nf_tables message for family inet.
func (e *encoder) msg(typ uint16, flags uint16, attrs ...netlink.Attribute) {
	data := append([]byte{famINet, unix.NFNETLINK_V0, 0, 0}, marshal(attrs...)...)
	e.msgs = append(e.msgs, nlMsg{typ: unix.NFNL_SUBSYS_NFTABLES<<8 | typ,
		flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK | flags, data: data})
}

// anonSet is an anonymous constant set (or map, with vals) as nft makes
// it for a rule: named __set%d / __map%d, found by its batch ID.
type anonSet struct {
	keyType, keyLen, keyOrder    uint32
	dataType, dataLen, dataOrder uint32 // map only
	keys, vals                   [][]byte
}

// set appends the set and its elements; it returns the name and ID the
// lookup refers to.
func (e *encoder) set(s anonSet) (string, uint32) {
	e.setID++
	id := e.setID
	isMap := s.vals != nil
	name := "__set%d"
	flags := uint32(unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT)
	if isMap {
		name = "__map%d"
		flags |= unix.NFT_SET_MAP
	}
	udata := []byte{udataSetKeyByteorder, 4}
	udata = append(udata, host32(s.keyOrder)...)
	attrs := []netlink.Attribute{
		attr(unix.NFTA_SET_TABLE, cstr(e.table)),
		attr(unix.NFTA_SET_NAME, cstr(name)),
		attr(unix.NFTA_SET_FLAGS, be32(flags)),
		attr(unix.NFTA_SET_KEY_TYPE, be32(s.keyType)),
		attr(unix.NFTA_SET_KEY_LEN, be32(s.keyLen)),
	}
	if isMap {
		attrs = append(attrs, attr(unix.NFTA_SET_DATA_TYPE, be32(s.dataType)), attr(unix.NFTA_SET_DATA_LEN, be32(s.dataLen)))
		udata = append(udata, udataSetDataByteorder, 4)
		udata = append(udata, host32(s.dataOrder)...)
	}
	attrs = append(attrs,
		attr(unix.NFTA_SET_ID, be32(id)),
		nested(unix.NFTA_SET_DESC, attr(unix.NFTA_SET_DESC_SIZE, be32(uint32(len(s.keys))))),
		attr(unix.NFTA_SET_USERDATA, udata),
	)
	e.msg(unix.NFT_MSG_NEWSET, unix.NLM_F_CREATE, attrs...)

	elems := make([]netlink.Attribute, len(s.keys))
	for i, k := range s.keys {
		el := []netlink.Attribute{nested(unix.NFTA_SET_ELEM_KEY, attr(unix.NFTA_DATA_VALUE, k))}
		if isMap {
			el = append(el, nested(unix.NFTA_SET_ELEM_DATA, attr(unix.NFTA_DATA_VALUE, s.vals[i])))
		}
		elems[i] = nested(unix.NFTA_LIST_ELEM, el...)
	}
	e.msg(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE,
		attr(unix.NFTA_SET_ELEM_LIST_TABLE, cstr(e.table)),
		attr(unix.NFTA_SET_ELEM_LIST_SET, cstr(name)),
		attr(unix.NFTA_SET_ELEM_LIST_SET_ID, be32(id)),
		nested(unix.NFTA_SET_ELEM_LIST_ELEMENTS, elems...),
	)
	return name, id
}

// rule appends the rule's sets and the rule (appended to the chain).
func (e *encoder) rule(chainName string, r nftRule) error {
	exprs, err := e.exprs(r)
	if err != nil {
		return err
	}
	list := make([]netlink.Attribute, len(exprs))
	for i, x := range exprs {
		b, err := expr.Marshal(famINet, x)
		if err != nil {
			return err
		}
		list[i] = netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: b}
	}
	attrs := []netlink.Attribute{
		attr(unix.NFTA_RULE_TABLE, cstr(e.table)),
		attr(unix.NFTA_RULE_CHAIN, cstr(chainName)),
		nested(unix.NFTA_RULE_EXPRESSIONS, list...),
	}
	if r.comment != "" {
		c := cstr(r.comment)
		if len(c) > 255 {
			return fmt.Errorf("comment of %d bytes", len(c))
		}
		attrs = append(attrs, attr(unix.NFTA_RULE_USERDATA, append([]byte{udataRuleComment, byte(len(c))}, c...)))
	}
	e.msg(unix.NFT_MSG_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_APPEND, attrs...)
	return nil
}

// exprs is the rule as nft compiles it.
func (e *encoder) exprs(r nftRule) ([]expr.Any, error) {
	var x []expr.Any
	ctNewUnmarked := []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: host32(expr.CtStateBitNEW), Xor: host32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: host32(0)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: host32(0)},
	}
	switch r.kind {
	case ruleJump, ruleMasquerade, ruleSNAT:
		key := expr.MetaKeyIIFNAME
		if r.kind != ruleJump {
			key = expr.MetaKeyOIFNAME
		}
		name, err := ifname(r.ifname)
		if err != nil {
			return nil, err
		}
		x = append(x, &expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name})
		sx, err := saddr(r.lan)
		if err != nil {
			return nil, err
		}
		x = append(x, sx...)
		switch r.kind {
		case ruleJump:
			x = append(x, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.target})
		case ruleMasquerade:
			x = append(x, &expr.Masq{})
		case ruleSNAT:
			fam := uint32(unix.NFPROTO_IPV4)
			if r.natTo.Is6() {
				fam = unix.NFPROTO_IPV6
			}
			if r.natTo.Is4() != r.lan.Addr().Is4() || r.natTo.Zone() != "" {
				return nil, fmt.Errorf("nat address %s", r.natTo)
			}
			x = append(x, &expr.Immediate{Register: 1, Data: r.natTo.AsSlice()},
				&expr.NAT{Type: expr.NATTypeSourceNAT, Family: fam, RegAddrMin: 1})
		}
	case ruleSticky:
		var proto byte
		switch r.proto {
		case "tcp":
			proto = unix.IPPROTO_TCP
		case "udp":
			proto = unix.IPPROTO_UDP
		default:
			return nil, fmt.Errorf("protocol %q", r.proto)
		}
		if len(r.ports) == 0 || len(r.marks) != 1 {
			return nil, fmt.Errorf("sticky rule without ports or mark")
		}
		x = append(x, ctNewUnmarked...)
		x = append(x, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
		port := func(p int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(p)) }
		if len(r.ports) == 1 {
			x = append(x, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port(r.ports[0])})
		} else {
			s := anonSet{keyType: nftTypeInetService, keyLen: 2, keyOrder: byteorderBig}
			for _, p := range r.ports {
				if p < 1 || p > 65535 {
					return nil, fmt.Errorf("port %d", p)
				}
				s.keys = append(s.keys, port(p))
			}
			name, id := e.set(s)
			x = append(x, &expr.Lookup{SourceRegister: 1, SetName: name, SetID: id})
		}
		x = append(x, &expr.Immediate{Register: 1, Data: host32(r.marks[0])}, &expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true})
	case ruleBalance:
		x = append(x, ctNewUnmarked...)
		switch len(r.marks) {
		case 0:
			return nil, fmt.Errorf("balance rule without marks")
		case 1:
			x = append(x, &expr.Immediate{Register: 1, Data: host32(r.marks[0])})
		default:
			s := anonSet{keyType: nftTypeInteger, keyLen: 4, keyOrder: byteorderHost,
				dataType: nftTypeMark, dataLen: 4, dataOrder: byteorderHost, vals: [][]byte{}}
			for k, m := range r.marks {
				s.keys = append(s.keys, host32(uint32(k)))
				s.vals = append(s.vals, host32(m))
			}
			name, id := e.set(s)
			x = append(x, &expr.Numgen{Register: 1, Modulus: uint32(len(r.marks)), Type: unix.NFT_NG_INCREMENTAL},
				&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: name, SetID: id})
		}
		x = append(x, &expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true})
	case ruleRestore:
		x = append(x, &expr.Ct{Key: expr.CtKeyMARK, Register: 1})
		switch len(r.marks) {
		case 0:
			return nil, fmt.Errorf("restore rule without marks")
		case 1:
			x = append(x, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: host32(r.marks[0])})
		default:
			s := anonSet{keyType: nftTypeMark, keyLen: 4, keyOrder: byteorderHost}
			for _, m := range r.marks {
				s.keys = append(s.keys, host32(m))
			}
			name, id := e.set(s)
			x = append(x, &expr.Lookup{SourceRegister: 1, SetName: name, SetID: id})
		}
		x = append(x, &expr.Ct{Key: expr.CtKeyMARK, Register: 1}, &expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true})
	default:
		return nil, fmt.Errorf("rule kind %d has no encoding", r.kind)
	}
	return x, nil
}

// ifname is an interface name as nft matches it exactly: IFNAMSIZ bytes,
// zero-padded.
func ifname(s string) ([]byte, error) {
	if !safeIfname(s) {
		return nil, fmt.Errorf("interface name %q", s)
	}
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, s)
	return b, nil
}

// saddr matches the network's family and source as nft compiles
// `ip saddr NET`: a prefix on a byte boundary loads and compares only its
// bytes; any other loads the whole address and masks it.
func saddr(n netip.Prefix) ([]expr.Any, error) {
	a := n.Addr()
	if !n.IsValid() || a.Zone() != "" || a.Is4In6() {
		return nil, fmt.Errorf("network %v", n)
	}
	proto, off := byte(unix.NFPROTO_IPV4), uint32(12)
	if a.Is6() {
		proto, off = unix.NFPROTO_IPV6, 8
	}
	n = n.Masked()
	addr := n.Addr().AsSlice()
	bits := n.Bits()
	x := []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}}}
	if bits > 0 && bits%8 == 0 {
		return append(x, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(bits / 8)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:bits/8]}), nil
	}
	mask := make([]byte, len(addr))
	for i := range mask {
		switch {
		case bits >= 8*(i+1):
			mask[i] = 0xff
		case bits > 8*i:
			mask[i] = byte(0xff << (8 - (bits - 8*i)))
		}
	}
	l := uint32(len(addr))
	return append(x, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: l},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: l, Mask: mask, Xor: make([]byte, l)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr}), nil
}
