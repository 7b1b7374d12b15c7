package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Open opens the file of entry i for reading, for a caller that serves the
// source's bytes itself (over HTTP, for instance) rather than with Serve.
// It refuses, with an error wrapping ErrSourceChanged, a file that is gone
// or differs from the one hashed (another file, size or modification time),
// as Serve does; a folder or an index out of range is an error too. The
// caller closes the file.
func (s *Source) Open(i int) (*os.File, Entry, error) {
	if i < 0 || i >= len(s.manifest.Entries) {
		return nil, Entry{}, fmt.Errorf("transfer: no entry %d in a share of %d", i, len(s.manifest.Entries))
	}
	e, sf := s.manifest.Entries[i], &s.files[i]
	if e.Kind != KindFile {
		return nil, e, fmt.Errorf("transfer: %s is a folder, not a file", quote(e.Path))
	}
	changed := func() error {
		return newErr(ErrSourceChanged, nil, "transfer: "+quote(e.Path)+" changed since it was shared; share it again")
	}
	f, err := os.Open(sf.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, e, changed()
	}
	if err != nil {
		return nil, e, fmt.Errorf("transfer: open %s: %w", quote(e.Path), err)
	}
	if fi, err := f.Stat(); err != nil || !sameAsHashed(fi, sf.info) {
		f.Close()
		return nil, e, changed()
	}
	return f, e, nil
}

// sameAsHashed reports whether fi is still the file that was hashed as was.
func sameAsHashed(fi, was os.FileInfo) bool {
	return os.SameFile(fi, was) && fi.Size() == was.Size() && fi.ModTime().Equal(was.ModTime())
}

// Encode returns m as the JSON payload of a MANIFEST frame
// ({"version":1,"entries":[...]}), as Serve sends it.
func (m *Manifest) Encode() ([]byte, error) {
	b, err := encodeManifest(m)
	if err != nil {
		return nil, fmt.Errorf("transfer: encode manifest: %w", err)
	}
	return b, nil
}
