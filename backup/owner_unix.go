//go:build unix

package backup

import (
	"io/fs"
	"os"
	"syscall"
)

// fileOwner is the owner to give restored files: the target directory's,
// when we run as root and may give it.
func fileOwner(fi fs.FileInfo) *ids {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	return &ids{uid: int(st.Uid), gid: int(st.Gid)}
}
