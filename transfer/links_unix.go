//go:build unix

package transfer

import (
	"io/fs"
	"syscall"
)

// linkCount returns how many names (hard links) the file fi describes has.
func linkCount(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true
}
