package transfer

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// plan inspects the target folder for every entry: which folders exist,
// which files are already there (identical), which have a .part to resume,
// and which must take another name. It only reads.
func (r *receiver) plan(ctx context.Context) error {
	dirs := make(map[string]bool) // slash path -> already exists
	r.files = make([]rfile, 0, r.m.Files())
	for i := range r.m.Entries {
		e := &r.m.Entries[i]
		if e.Kind == KindDir {
			if _, err := r.ensureDir(r.localPath(i), dirs); err != nil {
				return err
			}
			continue
		}
		sum, _ := parseSum(e.SHA256) // validated
		rf := rfile{index: i, sum: sum, final: r.localPath(i)}
		parentExists := true
		if dir := path.Dir(rf.final); dir != "." {
			var err error
			if parentExists, err = r.ensureDir(dir, dirs); err != nil {
				return err
			}
		}
		switch {
		case e.Kind == KindStream:
			rf.stream = true
			if err := r.resolveStream(&rf, e, parentExists); err != nil {
				return err
			}
		case parentExists:
			if err := r.resolve(ctx, &rf, e); err != nil {
				return err
			}
		}
		r.files = append(r.files, rf)
		if rf.skip {
			r.skipped += e.Size
		} else {
			r.skipped += rf.offset
			r.wants = append(r.wants, len(r.files)-1)
		}
	}
	return nil
}

// localPath returns the path entry i is stored at, relative to Dir.
func (r *receiver) localPath(i int) string {
	if r.local == nil {
		return r.m.Entries[i].Path
	}
	return r.local[i]
}

// ensureDir checks folder p and its parents, and reports whether p exists.
// Missing folders are queued for creation.
func (r *receiver) ensureDir(p string, dirs map[string]bool) (bool, error) {
	if exists, ok := dirs[p]; ok {
		return exists, nil
	}
	parentExists := true
	if parent := path.Dir(p); parent != "." {
		var err error
		if parentExists, err = r.ensureDir(parent, dirs); err != nil {
			return false, err
		}
	}
	exists := false
	if parentExists {
		fi, err := r.root.Lstat(filepath.FromSlash(p))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return false, fmt.Errorf("transfer: inspect %s: %w", quote(p), err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return false, conflict(p, "is a symbolic link in the target folder; refusing to follow it")
		case !fi.IsDir():
			return false, conflict(p, "already exists in the target folder and is not a folder")
		default:
			exists = true
		}
	}
	dirs[p] = exists
	if !exists {
		r.mkdirs = append(r.mkdirs, p)
	}
	return exists, nil
}

// resolve picks the final name of a file whose folder exists: rf.final
// (its local name) if free or identical, else the first free or identical
// "NAME (n).ext".
func (r *receiver) resolve(ctx context.Context, rf *rfile, e *Entry) error {
	local := rf.final
	for n := 0; n <= maxRenames; n++ {
		name := local
		if n > 0 {
			name = numbered(local, n)
			if r.isReserved(name) {
				continue
			}
		}
		fi, err := r.lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			rf.final = name
			err := r.inspectPart(ctx, rf, e)
			if errors.Is(err, errOthersPart) {
				r.log.Debug("name taken by another file's partial file", "name", name)
				continue
			}
			if err == nil && n > 0 {
				r.reserve(name)
			}
			return err
		case err != nil:
			return fmt.Errorf("transfer: inspect %s: %w", quote(name), err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return conflict(name, "is a symbolic link in the target folder; refusing to follow or replace it")
		case fi.Mode().IsRegular() && fi.Size() == e.Size:
			same, err := r.hasContent(ctx, name, rf.sum, e.Size)
			if err != nil {
				return err
			}
			if same {
				if n > 0 {
					r.reserve(name)
				}
				rf.final, rf.skip = name, true
				return nil
			}
		}
		r.log.Debug("name taken by a different file", "name", name)
	}
	return conflict(e.Path, fmt.Sprintf("and %d numbered copies of it already exist in the target folder", maxRenames))
}

// isReserved reports whether a candidate name, or its .part, is a name an
// entry of the manifest (or a folder it implies), or an earlier renamed
// file, will use.
func (r *receiver) isReserved(name string) bool {
	if r.reserved == nil {
		r.reserved = make(map[string]bool, 2*len(r.m.Entries))
		for i := range r.m.Entries {
			p := r.localPath(i)
			r.reserve(p)
			for j := strings.LastIndexByte(p, '/'); j > 0; j = strings.LastIndexByte(p[:j], '/') {
				r.reserve(p[:j])
			}
		}
	}
	k := foldKey(name)
	return r.reserved[k] || r.reserved[k+PartSuffix]
}

func (r *receiver) reserve(name string) {
	if r.reserved == nil {
		r.isReserved(name) // builds the set
	}
	k := foldKey(name)
	r.reserved[k] = true
	r.reserved[k+PartSuffix] = true
}

// hasContent reports whether the regular file name has the given SHA-256.
func (r *receiver) hasContent(ctx context.Context, name string, sum [32]byte, size int64) (bool, error) {
	f, err := r.open(name)
	if err != nil {
		return false, fmt.Errorf("transfer: open %s: %w", quote(name), err)
	}
	defer f.Close()
	n, got, err := sumN(ctx, f, size+1, r.hashBuf())
	if err != nil {
		return false, fmt.Errorf("transfer: read %s: %w", quote(name), err)
	}
	return n == size && got == sum, nil
}

func (r *receiver) hashBuf() []byte {
	if r.buf == nil {
		r.buf = make([]byte, hashBufferLen)
	}
	return r.buf
}

// lstat and open inspect a slash path in the target folder.
func (r *receiver) lstat(p string) (fs.FileInfo, error) {
	dir, name, err := r.planDirs.of(p)
	if err != nil {
		return nil, err
	}
	return dir.Lstat(name)
}

func (r *receiver) open(p string) (*os.File, error) {
	dir, name, err := r.planDirs.of(p)
	if err != nil {
		return nil, err
	}
	return dir.Open(name)
}

// checkSpace refuses a transfer that cannot fit on the target filesystem.
func (r *receiver) checkSpace() error {
	var need int64
	for _, i := range r.wants {
		rf := &r.files[i]
		n := r.entry(rf).Size - rf.offset
		need += (n + 4095) &^ 4095 // whole blocks
	}
	if need == 0 {
		return nil
	}
	free, err := r.opts.freeSpace(r.opts.Dir)
	if err != nil {
		r.log.Debug("cannot check free space", "err", err)
		return nil
	}
	if free < uint64(need) {
		return newErr(ErrNoSpace, nil, fmt.Sprintf("transfer: not enough free space in the target folder: the files need %s, %s is free",
			FormatSize(need), FormatSize(int64(min(free, 1<<62)))))
	}
	return nil
}

func (r *receiver) makeDirs() error {
	for _, p := range r.mkdirs {
		err := r.root.Mkdir(filepath.FromSlash(p), 0o755)
		if errors.Is(err, fs.ErrExist) {
			fi, lerr := r.root.Lstat(filepath.FromSlash(p))
			if lerr == nil && fi.IsDir() {
				continue
			}
			return conflict(p, "appeared in the target folder while preparing the transfer")
		}
		if err != nil {
			if isNoSpace(err) {
				return newErr(ErrNoSpace, err, "transfer: the disk is full")
			}
			return fmt.Errorf("transfer: create folder %s: %w", quote(p), err)
		}
	}
	return nil
}

// wirePlan is the JSON of a PLAN frame: the files the receiver needs, in
// manifest order. Files not listed are already complete at the receiver.
type wirePlan struct {
	Files []wantFile `json:"files"`
}

type wantFile struct {
	Index  int    `json:"index"`            // manifest entry
	Offset int64  `json:"offset,omitempty"` // bytes the receiver already has
	SHA256 string `json:"sha256,omitempty"` // of those bytes, when Offset > 0
}

func decodePlan(p []byte, m *Manifest) ([]wantFile, error) {
	var w wirePlan
	if err := json.Unmarshal(p, &w); err != nil {
		return nil, newErr(ErrProtocol, err, "transfer: malformed PLAN from the receiver")
	}
	last := -1
	for _, f := range w.Files {
		if f.Index <= last || f.Index >= len(m.Entries) {
			return nil, protocolErr(fmt.Sprintf("the receiver asked for entry %d, out of order or out of range", f.Index))
		}
		last = f.Index
		e := &m.Entries[f.Index]
		if !e.Kind.isFile() {
			return nil, protocolErr(fmt.Sprintf("the receiver asked for folder %s as a file", quote(e.Path)))
		}
		if e.Kind == KindStream && f.Offset != 0 {
			return nil, protocolErr(fmt.Sprintf("the receiver asked to resume the stream %s, which cannot resume", quote(e.Path)))
		}
		if f.Offset < 0 || f.Offset > e.Size {
			return nil, protocolErr(fmt.Sprintf("the receiver asked to resume %s at byte %d of %d", quote(e.Path), f.Offset, e.Size))
		}
		if _, err := parseSum(f.SHA256); (f.Offset > 0) != (err == nil) {
			return nil, protocolErr(fmt.Sprintf("the receiver sent a bad partial-file hash for %s", quote(e.Path)))
		}
	}
	return w.Files, nil
}

func (r *receiver) sendPlan() error {
	w := wirePlan{Files: make([]wantFile, 0, len(r.wants))}
	for _, i := range r.wants {
		rf := &r.files[i]
		wf := wantFile{Index: rf.index, Offset: rf.offset}
		if rf.offset > 0 {
			wf.SHA256 = hex.EncodeToString(rf.prefix.Sum(nil))
		}
		w.Files = append(w.Files, wf)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	if len(b) > maxControlLen {
		return protocolErr("the list of files to fetch is too large")
	}
	return writeFrame(r.conn, framePlan, b)
}
