//go:build !unix

package transfer

import "io/fs"

// linkCount is unknown here: os.Stat does not report hard links on this
// system.
func linkCount(fs.FileInfo) (uint64, bool) { return 0, false }
