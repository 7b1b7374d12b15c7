//go:build darwin || freebsd

package transfer

import (
	"os"

	"golang.org/x/sys/unix"
)

// Each received file is fsynced before it is renamed.
const syncPerFile = true

func syncBatch(*os.Root) error { return nil }

// freeSpace returns the bytes available to unprivileged users on the
// filesystem holding dir.
func freeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	avail := int64(st.Bavail) // signed on FreeBSD
	if avail < 0 {
		avail = 0
	}
	return uint64(avail) * uint64(st.Bsize), nil
}

// startWriteback does nothing here: each file is synced on its own
// (syncPerFile).
func startWriteback(*os.File, int64, int64) {}
