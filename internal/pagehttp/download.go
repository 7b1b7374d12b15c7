package pagehttp

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/lanft/lanft/transfer"
)

// DownloadProgress reports one download request. Requests may overlap (the
// page resumes, or fetches several files); each reports on its own, and the
// calls are serialised.
type DownloadProgress struct {
	File  int   // manifest entry index, -1 for the zip
	Start int64 // offset in the file where this request's bytes begin (a Range)
	Sent  int64 // bytes of this request sent so far (of file content, for the zip)
	Size  int64 // the file's size; for the zip, the sum of the files' sizes
	Done  bool  // the request ended; Err says why if it ended early
	Err   error
}

// Complete reports whether p is the end of a request that sent the file
// (or the zip) up to its last byte.
func (p DownloadProgress) Complete() bool {
	return p.Done && p.Err == nil && p.Start+p.Sent == p.Size
}

// progressEvery is how many bytes pass between two progress reports.
const progressEvery = 4 << 20

// Download serves src's files to the page under a new capability: GET
// hello, manifest, f/<i> and zip. report, if set, hears of every file
// request's bytes and end. The capability ends when revoked, when it
// expires, or when ctx is done.
func (s *Server) Download(ctx context.Context, g Grant, src *transfer.Source, report func(DownloadProgress)) (*Capability, error) {
	if src == nil {
		return nil, errors.New("pagehttp: nothing to serve")
	}
	m, err := src.Manifest().Encode()
	if err != nil {
		return nil, err
	}
	return s.mint(ctx, g, PurposeDownload, func(c *Capability) {
		c.src, c.manifest, c.report = src, m, report
	})
}

// ManifestSHA256 is the lowercase hex SHA-256 of the exact bytes a
// download capability serves at manifest ("" for an upload). Handed to
// the page over its verified channel, it binds the list of files, and so
// every file's SHA-256, to that channel: a machine in the middle of plain
// HTTP cannot change a file and its listed hash together unnoticed.
func (c *Capability) ManifestSHA256() string {
	if c.manifest == nil {
		return ""
	}
	sum := sha256.Sum256(c.manifest)
	return hex.EncodeToString(sum[:])
}

func (c *Capability) progress(p DownloadProgress) {
	if c.report == nil {
		return
	}
	c.repMu.Lock()
	defer c.repMu.Unlock()
	c.report(p)
}

func (c *Capability) serveManifest(_ context.Context, w http.ResponseWriter, r *http.Request) {
	b := c.manifest
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// serveFile serves entry i with ranges, If-Range and its SHA-256 as ETag.
func (c *Capability) serveFile(ctx context.Context, w http.ResponseWriter, r *http.Request, i int) {
	f, e, err := c.src.Open(i)
	switch {
	case errors.Is(err, transfer.ErrSourceChanged):
		c.s.log.Info("a page asked for a file that changed since it was shared", "file", i)
		empty(w, http.StatusConflict)
		return
	case err != nil:
		refuse(w) // a folder or no such entry
		return
	}
	defer f.Close()
	if strings.Contains(r.Header.Get("Range"), ",") {
		r.Header.Del("Range") // several ranges: the whole file instead (RFC 9110 allows it)
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", contentDisposition(path.Base(e.Path)))
	h.Set("ETag", `"`+e.SHA256+`"`)
	cw := &countingWriter{ResponseWriter: w, ctx: ctx, c: c, p: DownloadProgress{File: i, Size: e.Size}}
	http.ServeContent(cw, r, "", time.Time{}, f)
	if cw.status < 200 || cw.status >= 300 || r.Method == http.MethodHead {
		return
	}
	cw.p.Done = true
	if cw.p.Start+cw.p.Sent == cw.end {
		c.progress(cw.p)
		return
	}
	if cw.p.Err = context.Cause(ctx); cw.p.Err == nil {
		cw.p.Err = io.ErrUnexpectedEOF
	}
	c.progress(cw.p)
	panic(http.ErrAbortHandler) // cut the connection: the body is short
}

// countingWriter reports the bytes of a file response. Its ReadFrom passes
// the file on in chunks, so sendfile still moves them.
type countingWriter struct {
	http.ResponseWriter
	ctx    context.Context // done when the request or its capability ends
	c      *Capability
	p      DownloadProgress
	status int
	end    int64 // offset after the response's last byte
	since  int64 // bytes since the last report
}

func (cw *countingWriter) WriteHeader(status int) {
	if cw.status == 0 {
		cw.status = status
		cw.p.Start, cw.end = 0, cw.p.Size
		if status == http.StatusPartialContent {
			cw.p.Start, cw.end = parseContentRange(cw.Header().Get("Content-Range"), cw.p.Size)
		}
	}
	cw.ResponseWriter.WriteHeader(status)
}

func (cw *countingWriter) Write(b []byte) (int, error) {
	if cw.status == 0 {
		cw.WriteHeader(http.StatusOK)
	}
	if err := cw.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := cw.ResponseWriter.Write(b)
	cw.count(int64(n))
	return n, err
}

func (cw *countingWriter) ReadFrom(src io.Reader) (int64, error) {
	if cw.status == 0 {
		cw.WriteHeader(http.StatusOK)
	}
	rf, ok := cw.ResponseWriter.(io.ReaderFrom)
	lr, limited := src.(*io.LimitedReader)
	if !ok || !limited {
		return io.Copy(struct{ io.Writer }{cw}, src)
	}
	var total int64
	for lr.N > 0 {
		if err := cw.ctx.Err(); err != nil {
			return total, err
		}
		chunk := &io.LimitedReader{R: lr.R, N: min(lr.N, progressEvery)}
		n, err := rf.ReadFrom(chunk)
		lr.N -= n
		total += n
		cw.count(n)
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
	}
	return total, nil
}

func (cw *countingWriter) count(n int64) {
	cw.p.Sent += n
	if cw.since += n; cw.since >= progressEvery {
		cw.since = 0
		cw.c.touch()
		cw.c.progress(cw.p)
	}
}

func (cw *countingWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }

// parseContentRange reads "bytes a-b/size" as ServeContent writes it.
func parseContentRange(v string, size int64) (start, end int64) {
	v, ok := strings.CutPrefix(v, "bytes ")
	a, rest, ok2 := strings.Cut(v, "-")
	b, _, ok3 := strings.Cut(rest, "/")
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || !ok2 || !ok3 || err1 != nil || err2 != nil {
		return 0, size
	}
	return x, y + 1
}

// contentDisposition names an attachment: an ASCII fallback for old
// clients and the UTF-8 name (RFC 6266, RFC 8187).
func contentDisposition(name string) string {
	var ascii, ext strings.Builder
	for _, r := range name {
		switch {
		case r < 0x20 || r >= 0x7f || r == '"' || r == '\\' || r == '%' || r == '/':
			ascii.WriteByte('_')
		default:
			ascii.WriteRune(r)
		}
	}
	const hex = "0123456789ABCDEF"
	for _, b := range []byte(name) {
		if isAttrChar(b) {
			ext.WriteByte(b)
		} else {
			ext.WriteByte('%')
			ext.WriteByte(hex[b>>4])
			ext.WriteByte(hex[b&15])
		}
	}
	return `attachment; filename="` + ascii.String() + `"; filename*=UTF-8''` + ext.String()
}

// isAttrChar reports whether b may stand unescaped in an RFC 8187 value.
func isAttrChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", b) >= 0
}

// zipName is the download name of the zip: the share's one top-level
// name, or "lanft" for several.
func zipName(m *transfer.Manifest) string {
	top := ""
	for _, e := range m.Entries {
		t, _, _ := strings.Cut(e.Path, "/")
		if top != "" && t != top {
			return "lanft.zip"
		}
		top = t
	}
	if top == "" {
		return "lanft.zip"
	}
	return top + ".zip"
}

// serveZip streams every entry as one ZIP (stored, not compressed; Zip64
// where sizes or counts need it). A failure mid-way aborts the connection,
// so the page never holds a truncated zip that looks complete.
func (c *Capability) serveZip(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	m := c.src.Manifest()
	p := DownloadProgress{File: -1, Size: m.TotalSize()}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", contentDisposition(zipName(m)))
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	// Check every file before the status line, so a changed file is a 409.
	for i, e := range m.Entries {
		if e.Kind != transfer.KindFile {
			continue
		}
		f, _, err := c.src.Open(i)
		if err != nil {
			c.s.log.Info("zip not served", "err", err)
			empty(w, http.StatusConflict)
			return
		}
		f.Close()
	}
	cw := &countingWriter{ResponseWriter: w, ctx: ctx, c: c, p: p}
	cw.WriteHeader(http.StatusOK)
	err := c.writeZip(ctx, w, m, cw)
	cw.p.Done, cw.p.Err = true, err
	c.progress(cw.p)
	if err != nil {
		c.s.log.Debug("zip cut", "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (c *Capability) writeZip(ctx context.Context, w io.Writer, m *transfer.Manifest, cw *countingWriter) error {
	zw := zip.NewWriter(w)
	buf := make([]byte, 256<<10)
	for i, e := range m.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Kind == transfer.KindDir {
			if _, err := zw.CreateHeader(&zip.FileHeader{Name: e.Path + "/", Method: zip.Store, Modified: time.Now()}); err != nil {
				return err
			}
			continue
		}
		if err := c.zipFile(zw, i, cw, buf); err != nil {
			return err
		}
	}
	return zw.Close()
}

func (c *Capability) zipFile(zw *zip.Writer, i int, cw *countingWriter, buf []byte) error {
	f, e, err := c.src.Open(i)
	if err != nil {
		return err
	}
	defer f.Close()
	mod := time.Now()
	if fi, err := f.Stat(); err == nil {
		mod = fi.ModTime()
	}
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: e.Path, Method: zip.Store, Modified: mod})
	if err != nil {
		return err
	}
	n, err := io.CopyBuffer(contentCounter{fw, cw}, io.LimitReader(f, e.Size), buf)
	if err == nil && n != e.Size {
		err = fmt.Errorf("pagehttp: %s changed while it was being sent", e.Path)
	}
	return err
}

// contentCounter counts the file bytes written into the zip.
type contentCounter struct {
	w  io.Writer
	cw *countingWriter
}

func (c contentCounter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.cw.count(int64(n))
	return n, err
}
