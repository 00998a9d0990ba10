// Package execrun runs external commands (pfctl, route, ifconfig, nft, ip)
// with an argument list, never through a shell, behind the small Runner
// interface that pfapply, nftapply and redundancy take from their caller.
// A failed command is a *CmdError that says what ran and what it printed.
//
// Tests use the recording fake in execrun/exectest.
package execrun
