//go:build unix

package transfer

import (
	"errors"

	"golang.org/x/sys/unix"
)

// isNoSpace reports whether err means the disk (or the user's quota) is full.
func isNoSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}
