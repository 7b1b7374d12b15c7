package transfer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"sync"
)

// A stream is a file whose size and SHA-256 are not known before it is
// sent: standard input. It is an additive part of the wire format:
//
//   - its manifest entry has kind "stream", no size and no sha256 (a
//     receiver that does not know the kind refuses the manifest with
//     "unknown kind" before writing anything);
//   - the PLAN asks for it from offset 0 (a stream never resumes, and is
//     never taken for a file already there);
//   - the sender sends FILE(index, 0), DATA frames until the end of its
//     input, then TRAILER: the size (u64, big endian) and the SHA-256 (32
//     bytes) of what it sent;
//   - the receiver writes NAME.part as for a file and, at the next FILE or
//     END, checks that a TRAILER came and matches what it wrote, then
//     renames it. A free name is chosen up front: NAME if neither NAME nor
//     NAME.part exists, else "NAME (n).ext".

// stream is the single-use reader of a stream source.
type stream struct {
	mu     sync.Mutex
	r      io.Reader
	served bool
}

// NewStreamSource is a Source of one stream, named name (a base name), read
// from r as it is sent. It can be served once.
func NewStreamSource(name string, r io.Reader) (*Source, error) {
	if path.Base(name) != name {
		return nil, fmt.Errorf("transfer: a stream's name must be a base name, not %s", quote(name))
	}
	s := &Source{stream: stream{r: r}}
	s.manifest.Entries = []Entry{{Path: name, Kind: KindStream}}
	s.files = make([]sourceFile, 1)
	if err := ValidateManifest(&s.manifest); err != nil {
		return nil, err
	}
	b, err := encodeManifest(&s.manifest)
	if err != nil {
		return nil, fmt.Errorf("transfer: encode manifest: %w", err)
	}
	s.frame = appendFrame(nil, frameManifest, b)
	return s, nil
}

// sendStream sends the stream of entry w.Index: FILE, DATA until the end of
// the input, TRAILER.
func (s *Source) sendStream(ctx context.Context, bw *bufio.Writer, buf []byte, w wantFile, p *sendProgress) error {
	e := &s.manifest.Entries[w.Index]
	s.stream.mu.Lock()
	defer s.stream.mu.Unlock()
	if s.stream.served {
		return errors.New("transfer: a stream can be sent only once")
	}
	s.stream.served = true
	var hdr [headerLen + filePayloadLen]byte
	putHeader(hdr[:], frameFile, filePayloadLen)
	copy(hdr[headerLen:], encodeFileFrame(uint32(w.Index), 0))
	if _, err := bw.Write(hdr[:]); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	h := sha256.New()
	var done int64
	for {
		if ctx.Err() != nil {
			return stopped(ctx)
		}
		n, err := io.ReadAtLeast(s.stream.r, buf[headerLen:headerLen+maxDataLen], 1)
		if n > 0 {
			h.Write(buf[headerLen : headerLen+n])
			putHeader(buf, frameData, n)
			if _, werr := bw.Write(buf[:headerLen+n]); werr != nil {
				return fmt.Errorf("%w: %w", errWrite, werr)
			}
			done += int64(n)
			p.done += int64(n)
			p.report(e.Path, done, 0)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("transfer: read %s: %w", quote(e.Path), err)
		}
	}
	t := appendFrame(nil, frameTrailer, encodeTrailer(done, h.Sum(nil)))
	if _, err := bw.Write(t); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	return nil
}

func encodeTrailer(size int64, sum []byte) []byte {
	b := make([]byte, trailerPayloadLen)
	binary.BigEndian.PutUint64(b[:8], uint64(size))
	copy(b[8:], sum)
	return b
}

func decodeTrailer(p []byte) (size int64, sum [32]byte) {
	return int64(binary.BigEndian.Uint64(p[:8])), [32]byte(p[8:40])
}

// resolveStream picks a stream's final name: the first of NAME,
// "NAME (1).ext", ... for which neither the name nor its .part exists.
func (r *receiver) resolveStream(rf *rfile, e *Entry, parentExists bool) error {
	if !parentExists {
		return nil
	}
	local := rf.final
	for n := 0; n <= maxRenames; n++ {
		name := local
		if n > 0 {
			name = numbered(local, n)
			if r.isReserved(name) {
				continue
			}
		}
		free := true
		for _, p := range []string{name, name + PartSuffix} {
			_, err := r.lstat(p)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return fmt.Errorf("transfer: inspect %s: %w", quote(p), err)
			default:
				free = false
			}
		}
		if free {
			rf.final = name
			if n > 0 {
				r.reserve(name)
			}
			return nil
		}
	}
	return conflict(e.Path, fmt.Sprintf("and %d numbered copies of it already exist in the target folder", maxRenames))
}

// trailer takes the TRAILER of the stream being received: it must be the
// first, and say what arrived.
func (r *receiver) trailer(cur *rfile, p []byte, got int64, need *int64) error {
	if cur == nil || !cur.stream || cur.trailed {
		return protocolErr("TRAILER frame outside a stream")
	}
	size, sum := decodeTrailer(p)
	if size != got {
		return newErr(ErrIntegrity, nil, fmt.Sprintf("transfer: the sender declared %d bytes for the stream %s after sending %d",
			size, quote(r.entry(cur).Path), got))
	}
	cur.sum, cur.trailed, *need = sum, true, got
	return nil
}

// streamNeed is the bytes a stream may still bring before its TRAILER.
const streamNeed = math.MaxInt64
