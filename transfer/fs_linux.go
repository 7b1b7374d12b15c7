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

// startWriteback asks the kernel to start writing [off, off+n) of f to
// disk and returns without waiting for it (sync_file_range(2) with
// SYNC_FILE_RANGE_WRITE; it blocks only while the disk's queue is full).
// The batch's syncfs then finds little left to write: the disk's time
// overlaps the network's instead of following it.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
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
