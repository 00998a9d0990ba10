package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gwstated/cluster"
)

func init() {
	register(&command{
		name:    "keygen",
		args:    "[--out FILE [--force]]",
		summary: "write a new gossip encryption key",
		help: `Keygen makes a new gossip key: 32 random bytes (AES-256) from the
operating system's random source, written in base64 with a newline, the
form cluster.gossip.key_file expects. Every node of a cluster needs the same
key: copy the file to each of them.

With --out the key is written to FILE with mode 0600; an existing FILE is
left untouched and gwctl exits with status 1, unless --force is given, in
which case the new key replaces it atomically (written beside it, then
renamed over it). Without --out the key is printed on standard output.

Exit status: 0 written, 1 the file exists or could not be written, 2 bad
command line.`,
		flags: func(fls *flag.FlagSet) func(context.Context, *stdio, []string) int {
			out := fls.String("out", "", "write the key to `file` (mode 0600) instead of standard output")
			force := fls.Bool("force", false, "replace an existing --out file")
			return func(ctx context.Context, std *stdio, args []string) int {
				if len(args) > 0 {
					fmt.Fprintf(std.err, "gwctl keygen: unexpected argument %q\n", args[0])
					return exitUsage
				}
				if *force && *out == "" {
					fmt.Fprintf(std.err, "gwctl keygen: --force needs --out FILE\n")
					return exitUsage
				}
				if *out == "" {
					k, err := cluster.GenerateKey()
					if err != nil {
						fmt.Fprintf(std.err, "gwctl keygen: %v\n", err)
						return exitFail
					}
					fmt.Fprintln(std.out, base64.StdEncoding.EncodeToString(k))
					return exitOK
				}
				if err := writeKey(*out, *force); err != nil {
					fmt.Fprintf(std.err, "gwctl keygen: %v\n", err)
					return exitFail
				}
				fmt.Fprintf(std.err, "gwctl keygen: wrote a new gossip key to %s (mode 0600)\n", *out)
				return exitOK
			}
		},
	})
}

// writeKey writes a new key to path (cluster.WriteKeyFile: mode 0600,
// never over an existing file). With force it writes a temporary file
// beside path and renames it over path.
func writeKey(path string, force bool) error {
	if !force {
		err := cluster.WriteKeyFile(path)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; not overwriting it (use --force to replace the key)", path)
		}
		return err
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%x.tmp", filepath.Base(path), suffix))
	if err := cluster.WriteKeyFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}
