//go:build !(linux || darwin || freebsd || netbsd)

package transfer

import (
	"errors"
	"os"
)

// Without extended attributes here, a .part cannot be told apart from
// another file's of the same name: every one is partUntaggable.

func setPartTag(*os.File, [32]byte) error {
	return errors.ErrUnsupported
}

func partTagOf(*os.File, [32]byte) partOwner { return partUntaggable }
