package transfer

import (
	"os"

	"golang.org/x/sys/unix"
)

// On Linux, received files are made durable in batches with one syncfs(2)
// before they are renamed, instead of one fsync(2) per file.
const syncPerFile = false

// syncBatch flushes the filesystem holding root to stable storage.
func syncBatch(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// freeSpace returns the bytes available to unprivileged users on the
// filesystem holding dir.
func freeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
