package transfer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// partOwner is whose a .part found in the target folder is, as its tag
// (an extended attribute written when lanft created it) says.
type partOwner int

const (
	partOurs       partOwner = iota // a .part of the very file (same SHA-256)
	partOther                       // another file's, or not lanft's: left alone
	partUntaggable                  // the filesystem holds no tags: as before them
)

// errOthersPart: final.part belongs to another file; the file takes
// another name, and the sender hears nothing of it.
var errOthersPart = errors.New("the partial file of that name is another file's")

// inspectPart looks for final.part and, if it is a .part of this very file
// (partTagOf) and can be resumed, hashes it. Only such a .part is ever
// mentioned to the sender (its offset and prefix hash in the PLAN): of
// another file's (errOthersPart), nothing, not even that it exists.
func (r *receiver) inspectPart(ctx context.Context, rf *rfile, e *Entry) error {
	part := rf.final + PartSuffix
	fi, err := r.lstat(part)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("transfer: inspect %s: %w", quote(part), err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return conflict(part, "is a symbolic link in the target folder; refusing to follow or replace it")
	case !fi.Mode().IsRegular():
		return conflict(part, "is in the way in the target folder (not a regular file)")
	}
	f, err := r.open(part)
	if err != nil {
		return fmt.Errorf("transfer: open %s: %w", quote(part), err)
	}
	defer f.Close()
	if partTagOf(f, rf.sum) == partOther {
		return errOthersPart
	}
	rf.partExists = true
	if fi.Size() == 0 || fi.Size() > e.Size {
		return nil // nothing reusable: start over
	}
	if n, ok := linkCount(f); ok && n > 1 {
		// Another name shares this file, maybe outside the folder: writing
		// into it would change that file too. It is replaced, not resumed.
		r.log.Warn("partial file has other names (hard links); starting it over", "file", part)
		return nil
	}
	h := sha256.New()
	n, err := hashN(ctx, h, f, fi.Size(), r.hashBuf())
	if err != nil {
		return fmt.Errorf("transfer: read %s: %w", quote(part), err)
	}
	if n > 0 {
		rf.offset, rf.prefix = n, h
		r.log.Debug("resuming partial file", "file", e.Path, "have", n, "size", e.Size)
	}
	return nil
}

// openPart opens final.part for writing at rf.offset.
func (r *receiver) openPart(rf *rfile) (*os.File, error) {
	part := rf.final + PartSuffix
	dir, name, err := r.writeDirs.of(part)
	if err != nil {
		return nil, fmt.Errorf("transfer: open folder of %s: %w", quote(part), err)
	}
	var f *os.File
	switch {
	case !rf.partExists:
		f, err = dir.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	case rf.offset == 0:
		// Removed and created afresh rather than truncated: truncating
		// would also empty any file the .part is a hard link to.
		if err = dir.Remove(name); err == nil || errors.Is(err, fs.ErrNotExist) {
			f, err = dir.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		}
	default:
		f, err = dir.OpenFile(name, os.O_WRONLY, 0)
		if err == nil {
			if n, ok := linkCount(f); ok && n > 1 {
				f.Close()
				return nil, conflict(part, "gained another name (a hard link) during the transfer; refusing to write into it")
			}
			if err = f.Truncate(rf.offset); err == nil {
				_, err = f.Seek(rf.offset, io.SeekStart)
			}
			if err != nil {
				f.Close()
			}
		}
	}
	switch {
	case err == nil:
		if rf.offset == 0 {
			if terr := setPartTag(f, rf.sum); terr != nil {
				r.log.Debug("cannot tag the partial file; its resume cannot be told from another file's", "file", part, "err", terr)
			}
		}
		rf.partExists = true
		return f, nil
	case errors.Is(err, fs.ErrExist):
		return nil, conflict(part, "appeared in the target folder during the transfer")
	case isNoSpace(err):
		return nil, diskFull(err)
	}
	return nil, fmt.Errorf("transfer: create %s: %w", quote(part), err)
}

// discard closes and deletes a .part whose content cannot be trusted.
func (r *receiver) discard(rf *rfile, f *os.File) {
	f.Close()
	dir, name, err := r.writeDirs.of(rf.final + PartSuffix)
	if err == nil {
		err = dir.Remove(name)
	}
	if err != nil {
		r.log.Debug("could not delete bad partial file", "file", rf.final+PartSuffix, "err", err)
	}
}

const (
	// Received files are flushed to disk and renamed in batches.
	commitBatchFiles = 256
	commitBatchBytes = 64 << 20
	// writebackEvery is how often, in bytes of one file, the receiver
	// asks the kernel to start writing them out (startWriteback).
	writebackEvery = 8 << 20
)

// committer makes verified files durable and renames them into place, in
// batches so that thousands of small files do not cost one fsync each.
type committer struct {
	root    *os.Root
	dirs    folders
	pending []*rfile
	bytes   int64
}

func (c *committer) add(f *os.File, rf *rfile, size int64) error {
	var err error
	if syncPerFile {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if isNoSpace(err) {
			return diskFull(err)
		}
		return fmt.Errorf("transfer: write %s: %w", quote(rf.final+PartSuffix), err)
	}
	c.pending = append(c.pending, rf)
	c.bytes += size
	if len(c.pending) >= commitBatchFiles || c.bytes >= commitBatchBytes {
		return c.flush()
	}
	return nil
}

// flush syncs the pending files and renames each NAME.part to NAME, never
// replacing a file that appeared meanwhile.
func (c *committer) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	if err := syncBatch(c.root); err != nil {
		return fmt.Errorf("transfer: flush received files to disk: %w", err)
	}
	for i, rf := range c.pending {
		dir, final, err := c.dirs.of(rf.final)
		if err == nil {
			if _, err := dir.Lstat(final); !errors.Is(err, fs.ErrNotExist) {
				c.pending = c.pending[i+1:]
				return conflict(rf.final, "appeared in the target folder during the transfer; the received copy is kept as "+quote(rf.final+PartSuffix))
			}
			err = dir.Rename(final+PartSuffix, final)
		}
		if err != nil {
			c.pending = c.pending[i+1:]
			return fmt.Errorf("transfer: rename %s: %w", quote(rf.final+PartSuffix), err)
		}
		rf.done = true
	}
	c.pending = c.pending[:0]
	c.bytes = 0
	return nil
}

// diskFull is the error for a .part that cannot be written or closed
// because the disk is full.
func diskFull(err error) error {
	return newErr(ErrNoSpace, err, "transfer: the disk is full; free some space and try again")
}
