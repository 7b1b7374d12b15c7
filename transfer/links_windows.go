package transfer

import (
	"os"

	"golang.org/x/sys/windows"
)

// linkCount returns how many names (hard links) the open file f has.
func linkCount(f *os.File) (uint64, bool) {
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(windows.Handle(f.Fd()), &info); err != nil {
		return 0, false
	}
	return uint64(info.NumberOfLinks), true
}
