//go:build !unix && !windows

package transfer

import "os"

// linkCount is unknown on this system.
func linkCount(*os.File) (uint64, bool) { return 0, false }
