package main

import (
	"maps"
	"slices"
)

// foreign warns about records that do not fit the configuration: applied/
// and nodes/ records of nodes it does not name, overrides of links it does
// not define (or whose link field is not the key's), a verdict naming
// links it does not define, and the problems each agent reports about
// what it read (bad records, gossip from strangers). Agents ignore all of
// these; the warning is so that a person removes them.
func (j *judgement) foreign() {
	in := j.in
	if len(in.ConfigNodes) > 0 {
		for _, n := range slices.Sorted(maps.Keys(in.Applied)) {
			if _, ok := in.ConfigNodes[n]; !ok {
				j.warn("applied/%s: a record of a node that is not in the configuration", n)
			}
		}
		for _, n := range slices.Sorted(maps.Keys(in.Nodes)) {
			if _, ok := in.ConfigNodes[n]; !ok {
				j.warn("nodes/%s: a record of a node that is not in the configuration", n)
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(in.Applied)) {
		if a := in.Applied[n]; a.Node != n {
			j.warn("applied/%s: the record names node %q", n, a.Node)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(in.Nodes)) {
		if r := in.Nodes[n]; r.Node != n {
			j.warn("nodes/%s: the record names node %q", n, r.Node)
		}
	}
	known := func(link string) bool { return len(in.Links) == 0 || slices.Contains(in.Links, link) }
	for _, l := range slices.Sorted(maps.Keys(in.Overrides)) {
		o := in.Overrides[l]
		switch {
		case !known(l):
			j.warn("override/%s: an override of a link that is not in the configuration (agents ignore it)", l)
		case o.Link != l:
			j.warn("override/%s: the record names link %q (agents ignore it)", l, o.Link)
		}
	}
	if v := in.Verdict; v != nil {
		var unknown []string
		for _, l := range slices.Sorted(maps.Keys(v.Links)) {
			if !known(l) {
				unknown = append(unknown, l)
			}
		}
		for _, l := range v.Active {
			if !known(l) && !slices.Contains(unknown, l) {
				unknown = append(unknown, l)
			}
		}
		if len(unknown) > 0 {
			j.warn("the verdict names links that are not in the configuration: %q", unknown)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(in.Nodes)) {
		for _, p := range in.Nodes[n].Problems {
			j.warn("node %s reports: %s", n, p)
		}
	}
}
