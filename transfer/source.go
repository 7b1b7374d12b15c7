package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Progress reports how far a transfer is. Done and Total count the bytes of
// the whole transfer; bytes a receiver already had (resumed or identical
// files) count as done, and are Skipped as well: Done-Skipped is what this
// connection moved.
type Progress struct {
	File     string // manifest path of the current file
	FileDone int64
	FileSize int64
	Done     int64
	Total    int64
	Skipped  int64
}

// SendOptions configures one Serve call.
type SendOptions struct {
	Logger *slog.Logger
	// Progress, if set, is called from Serve's goroutine after each chunk.
	Progress func(Progress)
}

// Source is a set of files and folders, hashed once, that can be served to
// any number of receivers, concurrently.
type Source struct {
	manifest Manifest
	files    []sourceFile // parallel to manifest.Entries; zero for folders
	frame    []byte       // the encoded MANIFEST frame, shared by every Serve
	// stream is the reader of a stream source (NewStreamSource), served once.
	stream stream
}

type sourceFile struct {
	path string      // local path
	info os.FileInfo // as hashed; Serve refuses a file that no longer matches
}

// hashBufferLen is the read buffer of each hashing worker.
const hashBufferLen = 256 << 10

// NewSource prepares paths for sending. Each path is a file or a folder; a
// folder is sent as a tree under its base name, including empty files and
// empty folders. Symbolic links inside folders and special files are skipped
// and logged; a path that is itself a symbolic link is an error (share what it
// points to). Two paths with the same base name are an error. The SHA-256 of
// every file is computed here, once. Names that a receiver would refuse (see
// ValidateManifest) are reported here, before anyone connects.
func NewSource(ctx context.Context, paths []string, logger *slog.Logger) (*Source, error) {
	log := loggerOr(logger)
	if len(paths) == 0 {
		return nil, errors.New("transfer: nothing to share")
	}
	s := &Source{}
	tops := make(map[string]string, len(paths))
	for _, p := range paths {
		if err := s.add(ctx, log, p, tops); err != nil {
			return nil, err
		}
	}
	// Validate names before the slow part. Hashes are filled in below.
	placeholder := strings.Repeat("0", 64)
	for i := range s.manifest.Entries {
		if s.manifest.Entries[i].Kind == KindFile {
			s.manifest.Entries[i].SHA256 = placeholder
		}
	}
	if err := ValidateManifest(&s.manifest); err != nil {
		return nil, err
	}
	if err := s.hashAll(ctx); err != nil {
		return nil, err
	}
	b, err := encodeManifest(&s.manifest)
	if err != nil {
		return nil, fmt.Errorf("transfer: encode manifest: %w", err)
	}
	if len(b) > maxControlLen {
		return nil, fmt.Errorf("transfer: too many files to send at once: the list takes %s, the limit is %s; send fewer at a time",
			FormatSize(int64(len(b))), FormatSize(maxControlLen))
	}
	s.frame = appendFrame(nil, frameManifest, b)
	log.Debug("source ready", "entries", len(s.manifest.Entries), "files", s.manifest.Files(), "bytes", s.manifest.TotalSize())
	return s, nil
}

// Manifest returns a copy of what the source sends.
func (s *Source) Manifest() *Manifest {
	return s.manifest.clone()
}

func (s *Source) add(ctx context.Context, log *slog.Logger, p string, tops map[string]string) error {
	abs, err := filepath.Abs(p)
	if err != nil {
		return fmt.Errorf("transfer: cannot share %s: %w", quote(p), err)
	}
	if filepath.Dir(abs) == abs {
		return fmt.Errorf("transfer: cannot share %s: choose files or folders inside it", quote(p))
	}
	base := filepath.Base(abs)
	if prev, dup := tops[base]; dup {
		return fmt.Errorf("transfer: %s and %s would both arrive as %s; share them separately or rename one", quote(prev), quote(p), quote(base))
	}
	tops[base] = p
	fi, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("transfer: cannot share %s: %w", quote(p), err)
	}
	switch mode := fi.Mode(); {
	case mode&fs.ModeSymlink != 0:
		return fmt.Errorf("transfer: %s is a symbolic link; share the file or folder it points to", quote(p))
	case mode.IsRegular():
		s.addFile(base, abs, fi)
		return nil
	case !mode.IsDir():
		return fmt.Errorf("transfer: cannot share %s: not a regular file or folder", quote(p))
	}
	err = filepath.WalkDir(abs, func(local string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := base
		if local != abs {
			rel, err := filepath.Rel(abs, local)
			if err != nil {
				return err
			}
			name = base + "/" + filepath.ToSlash(rel)
		}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			log.Warn("not sending symbolic link", "path", local)
		case t.IsDir():
			s.manifest.Entries = append(s.manifest.Entries, Entry{Path: name, Kind: KindDir})
			s.files = append(s.files, sourceFile{})
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			s.addFile(name, local, info)
		default:
			log.Warn("not sending special file", "path", local, "type", t.String())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("transfer: cannot share %s: %w", quote(p), err)
	}
	return nil
}

func (s *Source) addFile(name, local string, fi os.FileInfo) {
	s.manifest.Entries = append(s.manifest.Entries, Entry{Path: name, Kind: KindFile, Size: fi.Size()})
	s.files = append(s.files, sourceFile{path: local, info: fi})
}

// hashAll hashes the files with a few workers, each with its own buffer.
func (s *Source) hashAll(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	work := make(chan int)
	g.Go(func() error {
		defer close(work)
		for i := range s.manifest.Entries {
			if s.manifest.Entries[i].Kind != KindFile {
				continue
			}
			select {
			case work <- i:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range min(runtime.GOMAXPROCS(0), 4) {
		g.Go(func() error {
			buf := make([]byte, hashBufferLen)
			for i := range work {
				if err := s.hashFile(ctx, i, buf); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

func (s *Source) hashFile(ctx context.Context, i int, buf []byte) error {
	e, sf := &s.manifest.Entries[i], &s.files[i]
	f, err := os.Open(sf.path)
	if err != nil {
		return fmt.Errorf("transfer: cannot share %s: %w", quote(e.Path), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("transfer: cannot share %s: %w", quote(e.Path), err)
	}
	if !fi.Mode().IsRegular() || !os.SameFile(fi, sf.info) {
		return newErr(ErrSourceChanged, nil, "transfer: "+quote(e.Path)+" changed while it was being prepared; try again")
	}
	n, sum, err := sumN(ctx, f, fi.Size()+1, buf)
	if err != nil {
		return fmt.Errorf("transfer: cannot share %s: %w", quote(e.Path), err)
	}
	if n != fi.Size() {
		return newErr(ErrSourceChanged, nil, "transfer: "+quote(e.Path)+" changed while it was being prepared; try again")
	}
	sf.info = fi
	e.Size = fi.Size()
	e.SHA256 = hex.EncodeToString(sum[:])
	return nil
}

// reply is a frame (or failure) read from the receiver.
type reply struct {
	t       frameType
	payload []byte
	err     error
}

// Serve sends the source to one receiver over conn and returns when the
// receiver has confirmed that every file arrived intact (nil), or on
// failure. Many Serve calls may run concurrently on one Source.
//
// Serve reads from conn while it writes (to see the receiver's ERROR at
// once), so conn must allow a Read concurrent with a Write, as net.Conn and
// data channels do. If conn is an io.Closer, Serve closes it when ctx is
// cancelled or the transfer fails, so that no read or write stays blocked;
// otherwise the caller must arrange that (a deadline, or closing conn).
func (s *Source) Serve(ctx context.Context, conn io.ReadWriter, opts SendOptions) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := closeOnCancel(ctx, conn)
	// The receiver's replies are read concurrently so that its ERROR frame is
	// seen even while a write to it blocks.
	replies := make(chan reply, 2)
	var wg sync.WaitGroup
	wg.Go(func() { readReplies(newFrameReader(conn, 4<<10), replies, cancel) })
	err := s.serve(ctx, conn, replies, opts)
	if err != nil {
		cancel(err)
	}
	wg.Wait()
	stop()
	return err
}

// readReplies reads what the receiver sends: one PLAN, then OK or ERROR.
// At most two replies are sent on out, which has room for both.
func readReplies(fr *frameReader, out chan<- reply, cancel context.CancelCauseFunc) {
	for first := true; ; first = false {
		t, p, err := fr.next()
		switch {
		case err != nil:
			var te *tErr
			if !errors.As(err, &te) {
				err = newErr(ErrInterrupted, err, "transfer: connection to the receiver lost")
			}
		case t == framePlan && first:
			out <- reply{t: t, payload: bytes.Clone(p)}
			continue
		case t == frameOK:
			out <- reply{t: t}
			return
		case t == frameError:
			err = parseError("receiver", p)
		default:
			err = protocolErr(fmt.Sprintf("unexpected %s frame from the receiver", t))
		}
		out <- reply{err: err}
		cancel(err)
		return
	}
}

// await returns the next reply from the receiver.
func await(ctx context.Context, replies <-chan reply) (reply, error) {
	select {
	case r := <-replies:
		return r, r.err
	case <-ctx.Done():
		return reply{}, stopped(ctx)
	}
}

// stopped explains why ctx is done: the receiver's error, or cancellation.
func stopped(ctx context.Context) error {
	cause := context.Cause(ctx)
	var te *tErr
	if errors.As(cause, &te) {
		return cause
	}
	return newErr(ErrInterrupted, cause, "transfer: sending cancelled")
}

func (s *Source) serve(ctx context.Context, conn io.Writer, replies <-chan reply, opts SendOptions) error {
	log := loggerOr(opts.Logger)
	bw := bufio.NewWriterSize(conn, writeBufferLen)
	// fail turns err into Serve's result, telling the receiver when it can.
	fail := func(err error) error {
		if ctx.Err() != nil {
			return stopped(ctx)
		}
		if !errors.Is(err, ErrInterrupted) && !errors.Is(err, ErrRemote) {
			if sendError(bw, err) == nil {
				bw.Flush()
			}
		}
		return err
	}
	lost := func(err error) error {
		return newErr(ErrInterrupted, err, "transfer: connection to the receiver lost")
	}

	if _, err := bw.Write(s.frame); err != nil {
		return fail(lost(err))
	}
	if err := bw.Flush(); err != nil {
		return fail(lost(err))
	}
	r, err := await(ctx, replies)
	if err != nil {
		return fail(err)
	}
	if r.t != framePlan {
		return fail(protocolErr(fmt.Sprintf("the receiver sent %s instead of PLAN", r.t)))
	}
	wants, err := decodePlan(r.payload, &s.manifest)
	if err != nil {
		return fail(err)
	}
	p := &sendProgress{fn: opts.Progress, total: s.manifest.TotalSize()}
	p.done = p.total
	for _, w := range wants {
		p.done -= s.manifest.Entries[w.Index].Size - w.Offset
	}
	p.skipped = p.done
	log.Debug("receiver plan", "files", len(wants), "of", s.manifest.Files(), "bytes", p.total-p.done)

	buf := make([]byte, headerLen+maxDataLen)
	for _, w := range wants {
		if err := s.sendFile(ctx, log, bw, buf, w, p); err != nil {
			if errors.Is(err, errWrite) {
				err = lost(err)
			}
			return fail(err)
		}
	}
	if err := writeFrame(bw, frameEnd, nil); err != nil {
		return fail(lost(err))
	}
	if err := bw.Flush(); err != nil {
		return fail(lost(err))
	}
	r, err = await(ctx, replies)
	if err != nil {
		return fail(err)
	}
	if r.t != frameOK {
		return fail(protocolErr(fmt.Sprintf("the receiver sent %s instead of OK", r.t)))
	}
	log.Debug("transfer confirmed by the receiver")
	return nil
}

// errWrite marks a failed write to the connection.
var errWrite = errors.New("write failed")

type sendProgress struct {
	fn                   func(Progress)
	done, total, skipped int64
}

func (p *sendProgress) report(file string, fileDone, fileSize int64) {
	if p.fn != nil {
		p.fn(Progress{File: file, FileDone: fileDone, FileSize: fileSize, Done: p.done, Total: p.total, Skipped: p.skipped})
	}
}

// sendFile streams one file: FILE(index, offset) then DATA frames. When the
// receiver has a prefix, its hash is checked against the local file first;
// on a mismatch the file is sent from the start.
func (s *Source) sendFile(ctx context.Context, log *slog.Logger, bw *bufio.Writer, buf []byte, w wantFile, p *sendProgress) error {
	e, sf := &s.manifest.Entries[w.Index], &s.files[w.Index]
	if e.Kind == KindStream {
		return s.sendStream(ctx, bw, buf, w, p)
	}
	changed := func() error {
		return newErr(ErrSourceChanged, nil, "transfer: "+quote(e.Path)+" changed since it was shared; share it again")
	}
	f, err := os.Open(sf.path)
	if errors.Is(err, fs.ErrNotExist) {
		return changed()
	}
	if err != nil {
		return fmt.Errorf("transfer: open %s: %w", quote(e.Path), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !os.SameFile(fi, sf.info) || fi.Size() != sf.info.Size() || !fi.ModTime().Equal(sf.info.ModTime()) {
		return changed()
	}
	off := w.Offset
	if off > 0 {
		want, _ := parseSum(w.SHA256)
		n, got, err := sumN(ctx, f, off, buf)
		if err != nil {
			return fmt.Errorf("transfer: read %s: %w", quote(e.Path), err)
		}
		if n != off || got != want {
			log.Debug("receiver's partial copy differs; sending from the start", "file", e.Path, "offset", off)
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("transfer: read %s: %w", quote(e.Path), err)
			}
			p.done -= off
			off = 0
		}
	}
	var hdr [headerLen + filePayloadLen]byte
	putHeader(hdr[:], frameFile, filePayloadLen)
	copy(hdr[headerLen:], encodeFileFrame(uint32(w.Index), off))
	if _, err := bw.Write(hdr[:]); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	p.report(e.Path, off, e.Size)
	for done := off; done < e.Size; {
		if ctx.Err() != nil {
			return stopped(ctx)
		}
		n := int(min(e.Size-done, maxDataLen))
		if _, err := io.ReadFull(f, buf[headerLen:headerLen+n]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return changed()
			}
			return fmt.Errorf("transfer: read %s: %w", quote(e.Path), err)
		}
		putHeader(buf, frameData, n)
		if _, err := bw.Write(buf[:headerLen+n]); err != nil {
			return fmt.Errorf("%w: %w", errWrite, err)
		}
		done += int64(n)
		p.done += int64(n)
		p.report(e.Path, done, e.Size)
	}
	return nil
}
