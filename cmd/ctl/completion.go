package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed completion/gwctl.bash
var bashCompletion string

//go:embed completion/_gwctl
var zshCompletion string

// completeCommand is the hidden command the completion scripts call:
// gwctl __complete -- WORD... with the words after "gwctl" up to the one
// being completed (possibly empty). It prints one candidate per line, or
// the single line ":files" when the shell should complete file names.
const completeCommand = "__complete"

// defaultConfigs are read for link and node names when the command line
// has no --config: the OpenBSD and the Debian package's locations.
var defaultConfigs = []string{"/etc/gwstated.yaml", "/etc/gwstated/gwstated.yaml"}

func init() {
	register(&command{
		name:    "completion",
		args:    "bash|zsh",
		summary: "print the shell completion script",
		help: `Completion prints the completion script for bash or zsh. It completes
subcommands, their flags, file names after --config and --out, and link
and node names read from the configuration file: the one given with
--config on the command line, else /etc/gwstated.yaml or
/etc/gwstated/gwstated.yaml.

Load it in the running shell with
	source <(gwctl completion bash)
	source <(gwctl completion zsh)
or install it as /usr/share/bash-completion/completions/gwctl (bash) or
as _gwctl in a directory of $fpath (zsh); the Debian package does both.

Exit status: 0 printed, 2 no or an unknown shell.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) int {
			return func(_ context.Context, io *stdio, args []string) int {
				if len(args) != 1 {
					fmt.Fprintln(io.err, "gwctl completion: name the shell: bash or zsh")
					return exitUsage
				}
				switch args[0] {
				case "bash":
					fmt.Fprint(io.out, bashCompletion)
				case "zsh":
					fmt.Fprint(io.out, zshCompletion)
				default:
					fmt.Fprintf(io.err, "gwctl completion: %q is not bash or zsh\n", args[0])
					return exitUsage
				}
				return exitOK
			}
		},
	})
	register(&command{
		name:    completeCommand,
		args:    "-- WORD...",
		summary: "", // hidden: not in the command list
		help:    "Prints completion candidates for the completion scripts.",
		flags: func(fs *flag.FlagSet) func(context.Context, *stdio, []string) int {
			return func(_ context.Context, io *stdio, args []string) int {
				for _, c := range complete(args, os.ReadFile) {
					fmt.Fprintln(io.out, c)
				}
				return exitOK
			}
		},
	})
}

// hidden reports whether a command stays out of the command list.
func hidden(name string) bool { return strings.HasPrefix(name, "__") }

// complete returns the candidates for the last of words (the words after
// "gwctl"), read through readFile for link and node names.
func complete(words []string, readFile func(string) ([]byte, error)) []string {
	words = joinEquals(words)
	if len(words) == 0 {
		words = []string{""}
	}
	cur := words[len(words)-1]
	if len(words) == 1 {
		return withPrefix(commandNames(), cur)
	}
	c, ok := commands[words[0]]
	if !ok || hidden(c.name) {
		if words[0] == "help" && len(words) == 2 {
			return withPrefix(commandNames(), cur)
		}
		return nil
	}
	fs, _ := newFlagSet(c, io.Discard)
	// The flags before the current word, their values, and the positional
	// arguments.
	var (
		config  string
		pending *flag.Flag // a flag waiting for its value (the current word)
		npos    int
	)
	for _, w := range words[1 : len(words)-1] {
		if pending != nil {
			if pending.Name == "config" {
				config = w
			}
			pending = nil
			continue
		}
		name, value, hasValue := flagWord(w)
		if name == "" {
			npos++
			continue
		}
		f := fs.Lookup(name)
		switch {
		case f == nil || isBool(f):
		case hasValue:
			if name == "config" {
				config = value
			}
		default:
			pending = f
		}
	}
	names := func(kind string) []string { return configNames(config, kind, readFile) }
	if pending != nil {
		switch pending.Name {
		case "config", "out", "conntrackd-config", "conntrackd":
			return []string{":files"}
		case "link":
			return withPrefix(names("links"), cur)
		case "up":
			// a comma-separated list: complete its last element
			done, last := "", cur
			if i := strings.LastIndexByte(cur, ','); i >= 0 {
				done, last = cur[:i+1], cur[i+1:]
			}
			var out []string
			for _, l := range withPrefix(names("links"), last) {
				if !slices.Contains(strings.Split(done, ","), l) {
					out = append(out, done+l)
				}
			}
			return out
		case "node":
			return withPrefix(names("nodes"), cur)
		}
		return nil
	}
	if strings.HasPrefix(cur, "-") {
		var out []string
		fs.VisitAll(func(f *flag.Flag) { out = append(out, "--"+f.Name) })
		return withPrefix(out, cur)
	}
	switch {
	case (c.name == "drain" || c.name == "undrain") && npos == 0:
		return withPrefix(names("links"), cur)
	case c.name == "completion" && npos == 0:
		return withPrefix([]string{"bash", "zsh"}, cur)
	case c.name == "ctsync" && npos == 0:
		return withPrefix([]string{"master", "backup", "fault"}, cur)
	}
	return nil
}

// joinEquals puts "--flag", "=", "value" back together: bash splits words
// at COMP_WORDBREAKS, which holds "=".
func joinEquals(words []string) []string {
	var out []string
	for i := 0; i < len(words); i++ {
		if words[i] == "=" && len(out) > 0 && strings.HasPrefix(out[len(out)-1], "-") {
			out[len(out)-1] += "="
			if i+1 < len(words) {
				out[len(out)-1] += words[i+1]
				i++
			}
			continue
		}
		out = append(out, words[i])
	}
	return out
}

// flagWord splits "--name=value" or "-name"; name is "" for a positional
// argument.
func flagWord(w string) (name, value string, hasValue bool) {
	if len(w) < 2 || w[0] != '-' || w == "--" {
		return "", "", false
	}
	name = strings.TrimLeft(w, "-")
	name, value, hasValue = strings.Cut(name, "=")
	return name, value, hasValue
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func commandNames() []string {
	var out []string
	for n := range commands {
		if !hidden(n) {
			out = append(out, n)
		}
	}
	out = append(out, "help")
	slices.Sort(out)
	return out
}

func withPrefix(cands []string, prefix string) []string {
	var out []string
	for _, c := range cands {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// completionName is what a link or node name must look like to be offered:
// the config's own rule, so nothing a shell would interpret is printed.
var completionName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// configNames reads the link ("links") or node ("nodes") names of the
// config file at path, or of the first default config that exists. The
// file is not validated (completion must work while it is being edited);
// names that are not valid config names are left out.
func configNames(path, kind string, readFile func(string) ([]byte, error)) []string {
	paths := defaultConfigs
	if path != "" {
		paths = []string{path}
	}
	for _, p := range paths {
		b, err := readFile(p)
		if err != nil {
			continue
		}
		var doc struct {
			Links []struct {
				Name string `yaml:"name"`
			} `yaml:"links"`
			Nodes map[string]any `yaml:"nodes"`
		}
		if yaml.Unmarshal(b, &doc) != nil {
			return nil
		}
		var out []string
		if kind == "links" {
			for _, l := range doc.Links {
				out = append(out, l.Name)
			}
		} else {
			for n := range doc.Nodes {
				out = append(out, n)
			}
			slices.Sort(out)
		}
		return slices.DeleteFunc(out, func(n string) bool { return !completionName.MatchString(n) })
	}
	return nil
}
