package transfer

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// Each received file is flushed before it is renamed.
const syncPerFile = true

func syncBatch(*os.Root) error { return nil }

// freeSpace returns the bytes available to the user on the volume holding dir.
func freeSpace(dir string) (uint64, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, err
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return 0, err
	}
	return avail, nil
}

func isNoSpace(err error) bool {
	return errors.Is(err, windows.ERROR_DISK_FULL) || errors.Is(err, windows.ERROR_HANDLE_DISK_FULL)
}

// startWriteback does nothing here: each file is synced on its own
// (syncPerFile).
func startWriteback(*os.File, int64, int64) {}
