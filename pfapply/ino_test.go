package pfapply

import (
	"os"
	"syscall"
)

// fileIno is the inode number of fi: an atomic rewrite (rename) changes it.
func fileIno(fi os.FileInfo) uint64 { return uint64(fi.Sys().(*syscall.Stat_t).Ino) }
