package transfer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
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
	// CheckManifest, if set, is called with the MANIFEST frame's payload
	// exactly as it arrived, before it is parsed and before anything is
	// written. An error refuses the transfer as corrupted: Receive returns
	// an error wrapping ErrIntegrity and the returned error, and writes
	// nothing. It binds the list of files, and so every file's SHA-256, to
	// something the caller learnt another way (the HTTP path checks the
	// SHA-256 that a page sent over its verified data channel).
	CheckManifest func(raw []byte) error
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
	stream     bool      // a KindStream entry: sum and size come in its TRAILER
	trailed    bool      // its TRAILER arrived
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
	if r.opts.CheckManifest != nil {
		if err := r.opts.CheckManifest(p); err != nil {
			return newErr(ErrIntegrity, err, "transfer: the list of files arrived changed; nothing was written")
		}
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

// receiveFiles reads FILE and DATA frames until END. A file is checked when
// the next FILE or END frame shows the sender is done with it.
func (r *receiver) receiveFiles(ctx context.Context) error {
	var (
		cur       *rfile // file being received
		f         *os.File
		h         hash.Hash
		got, need int64 // bytes of cur received in this run, and expected
		unsynced  int64 // bytes of cur written since the last startWriteback
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
			if unsynced += int64(len(p)); unsynced >= writebackEvery {
				startWriteback(f, cur.offset+got-unsynced, unsynced)
				unsynced = 0
			}
			r.bytes += int64(len(p))
			r.progress(cur, cur.offset+got, total)

		case frameTrailer:
			if err := r.trailer(cur, p, got, &need); err != nil {
				return err
			}

		case frameFile, frameEnd:
			if cur != nil && cur.stream && !cur.trailed {
				r.discard(cur, f)
				f = nil
				return newErr(ErrIntegrity, nil, fmt.Sprintf("transfer: the sender ended the stream %s without its size and SHA-256; the partial file was deleted",
					quote(r.entry(cur).Path)))
			}
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
			got, need, unsynced = 0, e.Size-cur.offset, 0
			if cur.stream {
				need = streamNeed
			}
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

func (r *receiver) writeFailure(err error, rf *rfile) error {
	part := quote(rf.final + PartSuffix)
	if isNoSpace(err) && rf.stream {
		return newErr(ErrNoSpace, err, "transfer: the disk is full while writing "+part+"; the partial file is kept, but a stream does not resume: free some space and send it again")
	}
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
		if cur.stream {
			what = fmt.Sprintf(" while receiving the stream %s (%s); the partial file is kept, but a stream does not resume: send it again",
				quote(e.Path), FormatSize(got))
		}
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
