package main

import (
	"fmt"

	"gwstated/config"
	"gwstated/linkstate"
	"gwstated/nftapply"
)

// renderNFTJSON is gwctl render --json for dataplane: nft.
type renderNFTJSON struct {
	NFT          string   `json:"nft"`
	Routes       []string `json:"routes"`
	Rules        []string `json:"rules"`
	DefaultRoute string   `json:"default_route"`
	Hash         string   `json:"hash"`
}

// runRenderNFT prints the Linux data plane's plan for verdict v.
func runRenderNFT(std *stdio, path string, cfg *config.Config, v linkstate.Verdict, asJSON bool) int {
	p, err := nftapply.Render(cfg, v)
	if err != nil {
		printErrorLines(std, path, err)
		return exitFail
	}
	out := renderNFTJSON{NFT: p.Table, Routes: []string{}, Rules: []string{}, Hash: p.Hash}
	for _, r := range p.Routes {
		out.Routes = append(out.Routes, r.String())
	}
	for _, r := range p.Rules {
		out.Rules = append(out.Rules, r.String())
	}
	if !p.DefaultRoute.IsZero() {
		out.DefaultRoute = p.DefaultRoute.Gateway.String()
	}
	if asJSON {
		return writeJSON(std, out)
	}
	printVerdictLine(std, cfg, v)
	fam := fmt.Sprintf("-%d", p.Family)
	fmt.Fprintf(std.out, "\n\nnft list table inet %s:\n", p.TableName)
	std.out.Write([]byte(p.Table))
	fmt.Fprintln(std.out, "\nrouting tables:")
	for _, r := range out.Routes {
		fmt.Fprintf(std.out, "    ip %s route replace %s\n", fam, r)
	}
	fmt.Fprintln(std.out, "\nip rules:")
	for _, r := range out.Rules {
		fmt.Fprintf(std.out, "    ip %s rule add %s\n", fam, r)
	}
	route := "none (left as it is)"
	if !p.DefaultRoute.IsZero() {
		route = p.DefaultRoute.String()
	}
	fmt.Fprintf(std.out, "\ndefault route: %s\nhash: %s\n", route, p.Hash)
	return exitOK
}
