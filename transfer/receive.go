package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ReceiveOptions configures Receive.
type ReceiveOptions struct {
	// Dir is the target folder; it must exist. Nothing is written outside it.
	Dir string
	// Accept, if set, is called once the whole manifest has been validated
	// and before anything is written. An error declines the transfer: the
	// sender is told, and Receive returns an error wrapping ErrRejected and
	// the returned error. A nil Accept accepts everything.
	Accept func(ctx context.Context, m *Manifest) error
	// Progress, if set, is called from Receive's goroutine after each chunk.
	Progress func(Progress)
	Logger   *slog.Logger
	// Names is the rule for names this system cannot hold (a ':' or '?',
	// "CON.txt" on Windows): such a file or folder is saved under a safe
	// name, reported in Result.Renamed. The zero value is the rule of the
	// system Receive runs on.
	Names NameRule

	// freeSpace replaces the filesystem query in tests.
	freeSpace func(dir string) (uint64, error)
	// lastWord replaces lastWordTimeout in tests.
	lastWord time.Duration
}

// Result says what Receive did.
type Result struct {
	// Files are the final paths of the manifest's files, relative to Dir
	// and slash-separated, in manifest order: those received and those
	// already present with identical content.
	Files []string
	// Bytes is the number of file bytes actually received.
	Bytes int64
	// Skipped is the number of file bytes not sent again thanks to resumed
	// partial files or identical existing files.
	Skipped int64
	// Renamed maps a manifest path to the path actually used, when a
	// different existing file kept the original name or this system cannot
	// hold it (see ReceiveOptions.Names and RenameReason).
	Renamed map[string]string

	why map[string]string // RenameReason of the paths renamed for the Names rule
}

// Reasons returned by Result.RenameReason.
const (
	ReasonTaken     = "a different file has that name"
	ReasonNotHere   = "its name is not allowed on this system"
	ReasonFolderNot = "its folder's name is not allowed on this system"
)

// RenameReason says why the file at manifest path p was saved as
// Renamed[p], in words for a user: ReasonNotHere, ReasonFolderNot or
// ReasonTaken. It returns "" for a file that was not renamed.
func (r *Result) RenameReason(p string) string {
	if _, ok := r.Renamed[p]; !ok {
		return ""
	}
	if why := r.why[p]; why != "" {
		return why
	}
	return ReasonTaken
}

const (
	// maxRenames bounds the "NAME (n).ext" candidates tried per file.
	maxRenames = 999
	// Received files are flushed to disk and renamed in batches.
	commitBatchFiles = 256
	commitBatchBytes = 64 << 20
)

// Receive receives one transfer from conn into opts.Dir.
//
// Every name is validated before anything is written, and all writes go
// through an os.Root opened on Dir: no symbolic link is followed or created,
// and an existing symbolic link in the way is an error. Each file is written
// to NAME.part, checked for size and SHA-256, then renamed to NAME. An
// existing NAME is never overwritten: if its content is identical the file
// counts as done, otherwise the new file gets the name "NAME (1).ext".
// Files get mode 0644 and folders 0755 (less the umask), whatever the sender had.
//
// If the connection breaks or ctx is cancelled, the .part files are kept and
// the next Receive of the same files fetches only what is missing; the error
// wraps ErrInterrupted. If conn is an io.Closer, Receive closes it when ctx
// is cancelled or the transfer fails; otherwise a cancelled ctx takes effect
// only when a blocked read returns. Receive waits for the sender as long as
// ctx allows: callers wanting an idle timeout put it in ctx or in conn.
//
// Once the connection is in use, the Result is returned on error too,
// listing what was completed.
func Receive(ctx context.Context, conn io.ReadWriter, opts ReceiveOptions) (*Result, error) {
	if opts.Dir == "" {
		return nil, errors.New("transfer: no target folder given")
	}
	root, err := os.OpenRoot(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("transfer: open target folder: %w", err)
	}
	defer root.Close()
	if opts.freeSpace == nil {
		opts.freeSpace = freeSpace
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := closeOnCancel(ctx, conn)
	r := &receiver{
		opts:      opts,
		log:       loggerOr(opts.Logger),
		conn:      conn,
		root:      root,
		fr:        newFrameReader(conn, maxDataLen),
		commit:    committer{root: root, dirs: folders{root: root}},
		planDirs:  folders{root: root},
		writeDirs: folders{root: root},
	}
	defer r.planDirs.close()
	defer r.writeDirs.close()
	defer r.commit.dirs.close()
	err = r.run(ctx)
	if err != nil {
		switch {
		case errors.Is(err, ErrRemote):
			// Acknowledge, so a sender waiting for our last word returns.
			r.tellSender(newErr(ErrInterrupted, nil, "transfer: stopped"), cancel)
		case ctx.Err() != nil || !errors.Is(err, ErrInterrupted):
			r.tellSender(err, cancel)
		}
		if ferr := r.commit.flush(); ferr != nil {
			r.log.Debug("could not finish verified files", "err", ferr)
		}
		cancel() // closes conn
	}
	stop()
	return r.result(), err
}

// lastWordTimeout bounds how long a failing Receive waits for the sender to
// take its ERROR frame before closing the connection (if it can).
const lastWordTimeout = 5 * time.Second

// tellSender sends the ERROR frame that ends a failed transfer. A sender
// that does not read it in time gets the connection closed instead.
func (r *receiver) tellSender(err error, cancel context.CancelFunc) {
	d := r.opts.lastWord
	if d == 0 {
		d = lastWordTimeout
	}
	timer := time.AfterFunc(d, cancel)
	defer timer.Stop()
	if werr := sendError(r.conn, err); werr != nil {
		r.log.Debug("could not tell the sender why the transfer stopped", "err", werr)
	}
}

type receiver struct {
	opts   ReceiveOptions
	log    *slog.Logger
	conn   io.ReadWriter
	root   *os.Root
	fr     *frameReader
	m      *Manifest
	local  []string // per entry, the path the Names rule stores it at; nil: as sent
	files  []rfile  // one per file entry, in manifest order
	wants  []int    // positions in files to fetch, in order
	mkdirs []string // folders to create, parents first
	commit committer
	// Folder handles: one for inspecting the target, one for writing.
	planDirs, writeDirs folders

	reserved map[string]bool // folded names a renamed file must not take
	buf      []byte          // for hashing existing files

	bytes, skipped int64
}

// rfile is the receiver's plan for one file.
type rfile struct {
	index      int // manifest entry
	sum        [32]byte
	final      string    // slash path relative to Dir
	skip       bool      // identical content already there
	partExists bool      // final+PartSuffix exists
	offset     int64     // bytes of the .part reused
	prefix     hash.Hash // SHA-256 state after those bytes
	done       bool      // verified and renamed to final
}

func (r *receiver) entry(rf *rfile) *Entry { return &r.m.Entries[rf.index] }

func (r *receiver) run(ctx context.Context) error {
	t, p, err := r.fr.next()
	if err != nil {
		return r.readFailure(ctx, err, nil, 0)
	}
	switch t {
	case frameManifest:
	case frameError:
		return parseError("sender", p)
	default:
		return protocolErr("expected a MANIFEST frame, got " + t.String())
	}
	m, err := decodeManifest(p)
	if err != nil {
		return err
	}
	r.m = m
	r.log.Debug("manifest received", "entries", len(m.Entries), "files", m.Files(), "bytes", m.TotalSize())
	if r.local, err = localNames(m, r.opts.Names); err != nil {
		return err
	}
	if r.opts.Accept != nil {
		if err := r.opts.Accept(ctx, m.clone()); err != nil {
			return &tErr{msg: "transfer: declined", kinds: []error{ErrRejected}, cause: err}
		}
	}
	if err := r.plan(ctx); err != nil {
		return err
	}
	if err := r.checkSpace(); err != nil {
		return err
	}
	if err := r.makeDirs(); err != nil {
		return err
	}
	if err := r.sendPlan(); err != nil {
		return r.readFailure(ctx, err, nil, 0)
	}
	return r.receiveFiles(ctx)
}

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
		if parentExists {
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

func conflict(p, why string) error {
	return newErr(ErrConflict, nil, "transfer: "+quote(p)+" "+why)
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

// numbered returns "dir/stem (n).ext" for "dir/stem.ext"; ".tar.gz" style
// double extensions stay together.
func numbered(p string, n int) string {
	dir, base := path.Split(p)
	ext := path.Ext(base)
	if ext == base { // ".bashrc"
		ext = ""
	}
	stem := base[:len(base)-len(ext)]
	if s := len(stem) - len(".tar"); s > 0 && strings.EqualFold(stem[s:], ".tar") {
		stem, ext = stem[:s], stem[s:]+ext
	}
	return dir + stem + " (" + strconv.Itoa(n) + ")" + ext
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

// hasContent reports whether the regular file name has the given SHA-256.
func (r *receiver) hasContent(ctx context.Context, name string, sum [32]byte, size int64) (bool, error) {
	f, err := r.open(name)
	if err != nil {
		return false, fmt.Errorf("transfer: open %s: %w", quote(name), err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := hashN(ctx, h, f, size+1, r.hashBuf())
	if err != nil {
		return false, fmt.Errorf("transfer: read %s: %w", quote(name), err)
	}
	var got [32]byte
	return n == size && [32]byte(h.Sum(got[:0])) == sum, nil
}

func (r *receiver) hashBuf() []byte {
	if r.buf == nil {
		r.buf = make([]byte, hashBufferLen)
	}
	return r.buf
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

// receiveFiles reads FILE and DATA frames until END. A file is checked when
// the next FILE or END frame shows the sender is done with it.
func (r *receiver) receiveFiles(ctx context.Context) error {
	var (
		cur       *rfile // file being received
		f         *os.File
		h         hash.Hash
		got, need int64 // bytes of cur received in this run, and expected
		next      int   // position in r.wants of the next file
	)
	fresh := sha256.New()
	total := r.m.TotalSize()
	defer func() {
		if f != nil {
			f.Close() // interrupted: the .part stays for the next run
		}
	}()
	for {
		if ctx.Err() != nil {
			return r.readFailure(ctx, ctx.Err(), cur, got)
		}
		t, p, err := r.fr.next()
		if err != nil {
			return r.readFailure(ctx, err, cur, got)
		}
		switch t {
		case frameData:
			if cur == nil {
				return protocolErr("DATA frame outside any file")
			}
			if int64(len(p)) > need-got {
				r.discard(cur, f)
				f = nil
				return newErr(ErrIntegrity, nil, fmt.Sprintf("transfer: the sender sent more than the %d bytes declared for %s; the partial file was deleted",
					r.entry(cur).Size, quote(r.entry(cur).Path)))
			}
			if _, err := f.Write(p); err != nil {
				return r.writeFailure(err, cur)
			}
			h.Write(p)
			got += int64(len(p))
			r.bytes += int64(len(p))
			r.progress(cur, cur.offset+got, total)

		case frameFile, frameEnd:
			if cur != nil {
				err := r.finish(cur, f, h, got, need)
				f = nil
				if err != nil {
					return err
				}
				cur = nil
			}
			if t == frameEnd {
				if next < len(r.wants) {
					e := r.entry(&r.files[r.wants[next]])
					return newErr(ErrIntegrity, nil, "transfer: the sender ended the transfer without sending "+quote(e.Path))
				}
				if err := r.commit.flush(); err != nil {
					return err
				}
				if err := writeFrame(r.conn, frameOK, nil); err != nil {
					// Every file is in place; only the sender misses the news.
					r.log.Debug("could not confirm to the sender", "err", err)
				}
				return nil
			}
			idx, off := decodeFileFrame(p)
			if next >= len(r.wants) || r.files[r.wants[next]].index != int(idx) {
				return protocolErr(fmt.Sprintf("FILE frame for entry %d, which is not the next file requested", idx))
			}
			cur = &r.files[r.wants[next]]
			next++
			e := r.entry(cur)
			if off != cur.offset && off != 0 {
				want := "0"
				if cur.offset > 0 {
					want = strconv.FormatInt(cur.offset, 10) + " or 0"
				}
				return protocolErr(fmt.Sprintf("the sender started %s at byte %d; expected %s", quote(e.Path), off, want))
			}
			if off == 0 && cur.offset > 0 {
				r.log.Debug("sender rejected the partial file; receiving it again", "file", e.Path)
				r.skipped -= cur.offset
				cur.offset, cur.prefix = 0, nil
			}
			if f, err = r.openPart(cur); err != nil {
				return err
			}
			if cur.offset > 0 {
				h = cur.prefix
			} else {
				fresh.Reset()
				h = fresh
			}
			got, need = 0, e.Size-cur.offset
			r.progress(cur, cur.offset, total)

		case frameError:
			return parseError("sender", p)
		default:
			return protocolErr(fmt.Sprintf("unexpected %s frame while receiving files", t))
		}
	}
}

func (r *receiver) progress(rf *rfile, fileDone, total int64) {
	if r.opts.Progress != nil {
		e := r.entry(rf)
		r.opts.Progress(Progress{File: e.Path, FileDone: fileDone, FileSize: e.Size, Done: r.skipped + r.bytes, Total: total, Skipped: r.skipped})
	}
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
		return nil, newErr(ErrNoSpace, err, "transfer: the disk is full; free some space and try again")
	}
	return nil, fmt.Errorf("transfer: create %s: %w", quote(part), err)
}

// finish checks a file the sender is done with, and queues it for renaming.
func (r *receiver) finish(rf *rfile, f *os.File, h hash.Hash, got, need int64) error {
	e := r.entry(rf)
	if got != need {
		r.discard(rf, f)
		return newErr(ErrIntegrity, nil, fmt.Sprintf("transfer: the sender sent %d of the %d bytes declared for %s; the partial file was deleted",
			rf.offset+got, e.Size, quote(e.Path)))
	}
	var sum [32]byte
	if [32]byte(h.Sum(sum[:0])) != rf.sum {
		r.discard(rf, f)
		return newErr(ErrIntegrity, nil, fmt.Sprintf("transfer: %s arrived corrupted (SHA-256 mismatch); the partial file was deleted, try again", quote(e.Path)))
	}
	return r.commit.add(f, rf, e.Size)
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

func (r *receiver) writeFailure(err error, rf *rfile) error {
	part := quote(rf.final + PartSuffix)
	if isNoSpace(err) {
		return newErr(ErrNoSpace, err, "transfer: the disk is full while writing "+part+"; the partial file is kept: free some space and try again to resume")
	}
	return fmt.Errorf("transfer: write %s: %w", part, err)
}

// readFailure explains why reading from the sender stopped.
func (r *receiver) readFailure(ctx context.Context, err error, cur *rfile, got int64) error {
	what := ""
	if cur != nil {
		e := r.entry(cur)
		what = fmt.Sprintf(" while receiving %s (%s of %s); the partial file is kept and the next transfer resumes it",
			quote(e.Path), FormatSize(cur.offset+got), FormatSize(e.Size))
	}
	if ctx.Err() != nil {
		return newErr(ErrInterrupted, context.Cause(ctx), "transfer: cancelled"+what)
	}
	var te *tErr
	if errors.As(err, &te) {
		return err
	}
	return newErr(ErrInterrupted, err, "transfer: connection to the sender lost"+what)
}

func (r *receiver) result() *Result {
	res := &Result{Bytes: r.bytes, Skipped: r.skipped}
	for i := range r.files {
		rf := &r.files[i]
		if !rf.skip && !rf.done {
			continue
		}
		res.Files = append(res.Files, rf.final)
		if p := r.entry(rf).Path; p != rf.final {
			if res.Renamed == nil {
				res.Renamed = make(map[string]string)
			}
			res.Renamed[p] = rf.final
			if local := r.localPath(rf.index); local != p {
				if res.why == nil {
					res.why = make(map[string]string)
				}
				res.why[p] = ReasonFolderNot
				if _, base := splitPath(p); !strings.HasSuffix(local, "/"+base) && local != base {
					res.why[p] = ReasonNotHere
				}
			}
		}
	}
	return res
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
			return newErr(ErrNoSpace, err, "transfer: the disk is full; free some space and try again")
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
