// Command gwctl is the operator's tool for a gwstated cluster: it checks and
// renders configuration offline, shows cluster status and the audit history,
// drains links and writes gossip keys. Each subcommand lives in its own file
// and registers itself with register.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Exit codes shared by every subcommand.
const (
	exitOK    = 0 // success (status: healthy)
	exitFail  = 1 // the command ran and found a problem (check: invalid config; status: degraded)
	exitUsage = 2 // bad command line (status: cluster unreachable)
)

// command is one gwctl subcommand.
type command struct {
	name    string // as typed
	args    string // synopsis after the name, e.g. "--config FILE [--node NAME]"
	summary string // one line for the command list
	help    string // paragraphs for `gwctl help NAME`, man-page style
	// flags declares the subcommand's flags on fs and returns the function
	// that runs it once fs has parsed; positional arguments are passed on.
	flags func(fs *flag.FlagSet) func(ctx context.Context, std *stdio, args []string) int
}

// stdio is where a subcommand writes.
type stdio struct {
	out, err io.Writer
	// isTerminal reports whether out is a terminal (colour, redraws).
	isTerminal bool
	// clock returns the current time; nil means time.Now. Tests inject a
	// fixed clock so that printed times are deterministic; times are shown
	// in the location of the time it returns.
	clock func() time.Time
}

// now returns the current time from std's clock.
func (std *stdio) now() time.Time {
	if std.clock != nil {
		return std.clock()
	}
	return time.Now()
}

var commands = map[string]*command{}

// register adds a subcommand; each subcommand file calls it from init.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("gwctl: subcommand registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	fi, err := os.Stdout.Stat()
	term := err == nil && fi.Mode()&os.ModeCharDevice != 0
	code := run(ctx, os.Args[1:], &stdio{out: os.Stdout, err: os.Stderr, isTerminal: term})
	stop()
	os.Exit(code)
}

// run executes one gwctl command line and returns its exit status.
func run(ctx context.Context, args []string, std *stdio) int {
	if len(args) == 0 {
		usage(std.err)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fs, _ := newFlagSet(c, std.out)
				fs.SetOutput(std.out)
				fs.Usage()
				return exitOK
			}
			fmt.Fprintf(std.err, "gwctl: unknown command %q\n", args[1])
			return exitUsage
		}
		usage(std.out)
		return exitOK
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(std.err, "gwctl: unknown command %q (run 'gwctl help' for the list)\n", name)
		return exitUsage
	}
	fs, runFn := newFlagSet(c, std.err)
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(std.out)
		fs.Usage()
		return exitOK
	}
	if err != nil {
		return exitUsage // flag package already printed the error and usage
	}
	return runFn(ctx, std, pos)
}

func newFlagSet(c *command, w io.Writer) (*flag.FlagSet, func(context.Context, *stdio, []string) int) {
	fs := flag.NewFlagSet("gwctl "+c.name, flag.ContinueOnError)
	fs.SetOutput(w)
	runFn := c.flags(fs)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: gwctl %s %s\n\n", c.name, c.args)
		fmt.Fprintf(out, "%s\n", strings.TrimSpace(c.help))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(out, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs, runFn
}

// parseInterspersed parses flags that may appear after positional arguments
// ("gwctl drain isp1 --reason x"); "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `usage: gwctl COMMAND [flags] [args]

gwctl is the operator's tool for a gwstated multi-WAN failover cluster.

commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		if !hidden(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, `
Run 'gwctl help COMMAND' or 'gwctl COMMAND --help' for a command's flags.
Exit status: 0 success, 1 the command found a problem, 2 usage error
(gwctl status: 0 healthy, 1 degraded, 2 cluster unreachable).
`)
}
