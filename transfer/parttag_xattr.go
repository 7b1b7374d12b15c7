//go:build linux || darwin || freebsd || netbsd

package transfer

import (
	"bytes"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// partTagAttr is the extended attribute naming the file a .part is of: the
// SHA-256 of the complete file, 32 bytes.
const partTagAttr = "user.lanft.sha256"

// setPartTag marks the .part f as the start of the file with SHA-256 sum.
func setPartTag(f *os.File, sum [32]byte) error {
	return unix.Fsetxattr(int(f.Fd()), partTagAttr, sum[:], 0)
}

// partTagOf tells whose .part f is.
func partTagOf(f *os.File, sum [32]byte) partOwner {
	var got [33]byte // one more: a longer value is not ours
	n, err := unix.Fgetxattr(int(f.Fd()), partTagAttr, got[:])
	switch {
	case errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP):
		return partUntaggable
	case err == nil && n == len(sum) && bytes.Equal(got[:n], sum[:]):
		return partOurs
	}
	return partOther
}
