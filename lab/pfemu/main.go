// Command pfemu is the lab's OpenBSD: one program that answers as pfctl(8),
// route(8) and ifconfig(8) (the emulator of gwstated/pfapply/pfemu, whose
// behaviour is taken from OpenBSD's source), keeping pf's anchors, tables
// and states, the default routes and the CARP demotion counters in a state
// directory between runs.
//
// It is called through links named pfctl, route and ifconfig in the state
// directory (the agent's pf.tools_dir points there): the name it was called
// by picks the program, the directory it was called from holds the state.
// "pfemu init DIR [openbsd|legacy]" creates such a directory with the links.
// Output, standard error and exit status are the emulated program's.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"gwstated/pfapply/pfemu"
)

func main() {
	os.Exit(run(os.Args))
}

func run(argv []string) int {
	name := filepath.Base(argv[0])
	if name == "pfemu" || name == "main" {
		if len(argv) >= 3 && argv[1] == "init" {
			return initDir(argv[2:])
		}
		fmt.Fprintln(os.Stderr, "usage: pfemu init DIR [openbsd|legacy]   (then run DIR/pfctl, DIR/route, DIR/ifconfig)")
		return 2
	}
	switch name {
	case "pfctl", "route", "ifconfig":
	default:
		fmt.Fprintf(os.Stderr, "pfemu: called as %q, not pfctl, route or ifconfig\n", name)
		return 2
	}
	dir := filepath.Dir(argv[0])
	var r pfemu.Result
	err := pfemu.WithDir(dir, func(e *pfemu.Emu) error {
		r = e.Exec("/sbin/"+name, argv[1:])
		return nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pfemu: %v\n", err)
		return 1
	}
	os.Stdout.WriteString(r.Stdout)
	os.Stderr.WriteString(r.Stderr)
	return r.Exit
}

func initDir(args []string) int {
	dir := args[0]
	dialect := "openbsd"
	if len(args) > 1 {
		dialect = args[1]
	}
	if err := pfemu.InitDir(dir, pfemu.DirConfig{Dialect: dialect, Seed: 1}, nil); err != nil {
		fmt.Fprintf(os.Stderr, "pfemu: %v\n", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pfemu: %v\n", err)
		return 1
	}
	for _, n := range []string{"pfctl", "route", "ifconfig"} {
		l := filepath.Join(dir, n)
		_ = os.Remove(l)
		if err := os.Symlink(self, l); err != nil {
			fmt.Fprintf(os.Stderr, "pfemu: %v\n", err)
			return 1
		}
	}
	return 0
}
