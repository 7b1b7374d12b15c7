package transfer

import (
	"os"
	"path/filepath"
	"strings"
)

// folders hands out an os.Root for the folder holding a slash path,
// keeping the last one open: files come grouped by folder, and an operation
// on a bare name in an open folder costs one system call where a nested
// path costs one per component. The folders were checked for symbolic links
// when the transfer was planned, and each handle is opened through the
// target folder's root, so it stays confined to it.
type folders struct {
	root *os.Root
	dir  string
	sub  *os.Root
}

// of returns the root to use for p and p's name within it.
func (c *folders) of(p string) (*os.Root, string, error) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return c.root, p, nil
	}
	dir, name := p[:i], p[i+1:]
	if c.sub == nil || c.dir != dir {
		c.close()
		sub, err := c.root.OpenRoot(filepath.FromSlash(dir))
		if err != nil {
			return nil, "", err
		}
		c.sub, c.dir = sub, dir
	}
	return c.sub, name, nil
}

func (c *folders) close() {
	if c.sub != nil {
		c.sub.Close()
		c.sub = nil
	}
}
