package config

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Data planes (dataplane:).
const (
	DataplanePF  = "pf"  // OpenBSD pf; pf.backend chooses pfctl or dir
	DataplaneNFT = "nft" // Linux nftables and policy routing
	DataplaneDir = "dir" // files in pf.dir (lab, tests, dry runs)
)

// Linux limits for the nft data plane.
const (
	maxMark     = 1<<32 - 1 // marks are 32 bits; 0 means "no mark"
	maxRtTable  = 1<<32 - 1 // routing table ids are 32 bits
	maxRulePrio = 32765     // 32766 is the main table's rule, 32767 the default table's
	maxVRRPDem  = 254       // keepalived priorities are 1-254
	maxNFTTable = 63        // nft allows 255; the name also appears in logs and metrics
)

// reservedTables are the kernel's own routing tables (rt_tables).
var reservedTables = map[int]string{0: "unspec", 253: "default", 254: "main", 255: "local"}

// Backend is the effective data plane: "nft", "dir", or "pfctl" (pf
// through pfctl). dataplane: pf defers to pf.backend, so pf.backend: dir
// still means files in pf.dir.
func (c *Config) Backend() string {
	switch c.Dataplane {
	case DataplaneNFT:
		return DataplaneNFT
	case DataplaneDir:
		return DataplaneDir
	}
	if c.PF.Backend == "dir" {
		return DataplaneDir
	}
	return "pfctl"
}

// Mark is link i's mark (nft.mark_base + i).
func (n NFT) Mark(i int) uint32 { return uint32(n.MarkBase + i) }

// RouteTable is link i's routing table (nft.table_base + i).
func (n NFT) RouteTable(i int) uint32 { return uint32(n.TableBase + i) }

// RulePriorities is the range of ip rule priorities gwstated uses for
// links links: first..last, inclusive. rule_priority holds the rule that
// lets the main table's specific routes win, then one fwmark rule and one
// source rule per link.
func (n NFT) RulePriorities(links int) (first, last int) {
	return n.RulePriority, n.RulePriority + 2*links
}

func (c *Config) checkDataplane(k *checker) {
	k.oneOf("dataplane", c.Dataplane, DataplanePF, DataplaneNFT, DataplaneDir)
	n := len(c.Links)
	if n == 0 {
		n = 1
	}
	nf := c.NFT
	k.name("nft.table", nf.Table, maxNFTTable, true)
	switch last := nf.MarkBase + n - 1; {
	case nf.MarkBase < 1:
		k.add("nft.mark_base", strconv.Itoa(nf.MarkBase), "must be at least 1 (mark 0 means no mark)")
	case last > maxMark:
		k.addf("nft.mark_base", fmt.Sprintf("%#x", nf.MarkBase), "leaves no room for %d links: marks are 32 bits (at most %#x)", n, maxMark)
	}
	switch last := nf.TableBase + n - 1; {
	case nf.TableBase < 1:
		k.add("nft.table_base", strconv.Itoa(nf.TableBase), "must be at least 1")
	case last > maxRtTable:
		k.addf("nft.table_base", strconv.Itoa(nf.TableBase), "leaves no room for %d links: routing tables are 32 bits", n)
	default:
		for t := 253; t <= 255; t++ {
			if t >= nf.TableBase && t <= last {
				k.addf("nft.table_base", strconv.Itoa(nf.TableBase), "gives the %d links tables %d-%d, which include table %d (%s), the kernel's own", n, nf.TableBase, last, t, reservedTables[t])
				break
			}
		}
	}
	first, last := nf.RulePriorities(n)
	switch {
	case first < 1:
		k.add("nft.rule_priority", strconv.Itoa(first), "must be at least 1 (priority 0 is the kernel's local table rule)")
	case last > maxRulePrio:
		k.addf("nft.rule_priority", strconv.Itoa(first), "gives the %d links rule priorities %d-%d; they must end at %d at most (32766 and 32767 are the main and default table rules)", n, first, last, maxRulePrio)
	}

	v := c.VRRP
	k.absPath("vrrp.track_file", v.TrackFile, true)
	if v.Demote < 0 || v.Demote > maxVRRPDem {
		k.addf("vrrp.demote", strconv.Itoa(v.Demote), "must be between 0 (off) and %d (keepalived priorities are 1-254)", maxVRRPDem)
	}
	seen := map[netip.Addr]bool{}
	for i, a := range v.Addresses {
		p := joinIndex("vrrp.addresses", i)
		if k.addr(p, a, true, 0, "") {
			if seen[a] {
				k.add(p, a.String(), "is listed twice")
			}
			seen[a] = true
		}
	}
	if c.Dataplane == DataplaneNFT && c.PF.Backend == "dir" {
		k.add("pf.backend", "dir", "means dataplane: dir; with dataplane: nft, remove it (or use --dry-run)")
	}
}
