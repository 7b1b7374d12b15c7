package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanft/lanft/internal/direct"
	"github.com/lanft/lanft/internal/pagehttp"
	"github.com/lanft/lanft/rtc"
	"github.com/lanft/lanft/transfer"
)

// The HTTP path between a browser page and lanft. When the remote is a
// page (flagPage) and this side serves pages (flagServesPage), the two
// agree over the verified data channel, right after the preamble, on an
// HTTP capability of this side's pagehttp.Server, in place of the direct
// path (internal/direct's framing: a u16 length, then JSON):
//
//	page ──▶ {"v":1,"origin":"http://10.0.0.1:7300"}
//	lanft ──▶ {"v":1,"base":"http://10.0.0.2:41234/c/TOKEN/","purpose":"download"|"upload"}
//	          (a download adds "manifest_sha256":"<hex>")
//	          or {"v":1,"why":"..."}                     (the data channel carries it)
//	page ──▶ {"v":1,"path":"http"}                       (after GET base+"hello" answered 204;
//	          an upload adds "manifest_sha256":"<hex>")
//	          or {"v":1,"path":"datachannel","why":"..."}
//
// manifest_sha256 is the SHA-256 of the exact MANIFEST JSON bytes the
// holder of the files sends over HTTP (GET base+"manifest" for a
// download, the first frame of the upload's stream). The other side
// refuses a list whose bytes hash otherwise, so the list, and with it
// every file's SHA-256, is bound to the verified channel: a machine in
// the middle of plain HTTP can read the files but not change one
// unnoticed. (An older page or lanft sends none; the list is then
// unchecked, as before.)
//
// A download (lanft holds the files) is then the page's to fetch: each
// file or all as one ZIP, with the browser's download manager, which keeps
// going behind a locked screen and resumes with Range; lanft waits until
// the page has fetched it all once, or the capability expired. An upload
// (the page holds the files) runs the transfer protocol unchanged over an
// HTTP byte stream (pagehttp.Stream), into transfer.Receive with every
// receive-side rule. The data channel is not used for bytes once the path
// is "http": the page may close it, and its loss ends nothing.

// Purposes of a capability, the second message's "purpose".
const (
	purposeDownload = "download"
	purposeUpload   = "upload"
)

// pageHello, pageGrant and pageChoice are the three messages.
type pageHello struct {
	V      int    `json:"v"`
	Origin string `json:"origin"`
}

type pageGrant struct {
	V              int    `json:"v"`
	Base           string `json:"base,omitempty"`
	Purpose        string `json:"purpose,omitempty"`
	ManifestSHA256 string `json:"manifest_sha256,omitempty"` // a download's
	Why            string `json:"why,omitempty"`
}

type pageChoice struct {
	V              int    `json:"v"`
	Path           string `json:"path"`
	ManifestSHA256 string `json:"manifest_sha256,omitempty"` // an upload's
	Why            string `json:"why,omitempty"`
}

// pageFlag is this side's preamble flag for the HTTP path: set when it has
// a server for pages and its mode lets the bytes leave the data channel.
func pageFlag(cfg *Config) byte {
	if cfg.Pages != nil && cfg.Mode.offersDirect() {
		return flagServesPage
	}
	return 0
}

// pagePath runs the HTTP path's negotiation with a page, after the
// preamble (and after a push's answer): src holds the files for a download
// (this side serves them: it shares, or pushes to the page); nil is an
// upload (the page's files come here). It returns the transport of the
// transfer: a *pageDownload for a download over HTTP (run it with
// serveOver), the HTTP byte stream for an upload, or dc itself when the
// data channel carries the transfer; and the Path the bytes take. Callers
// check pathPlan().page first: with no page on the other end, nothing is
// exchanged.
func (l *link) pagePath(ctx context.Context, dc *rtc.Stream, src *transfer.Source) (transport, Path, error) {
	origin, err := l.readPageHello(ctx, dc)
	if err != nil {
		return nil, "", err
	}
	return l.grantPage(ctx, dc, origin, src)
}

// readPageHello reads the page's first message: its origin.
func (l *link) readPageHello(ctx context.Context, dc *rtc.Stream) (string, error) {
	_, done := negotiating(ctx, dc)
	defer done()
	var hello pageHello
	if err := direct.ReadMessage(dc, &hello); err != nil {
		return "", fmt.Errorf("node: HTTP path: %w", err)
	}
	return hello.Origin, nil
}

// refusePage answers the page's first message with why: the data channel
// carries the transfer (a declined one too: the refusal follows on it).
func (l *link) refusePage(dc *rtc.Stream, why string) error {
	return direct.WriteMessage(dc, pageGrant{V: direct.Version, Why: why})
}

// grantPage answers the page's first message: the capability, or why
// there is none; then it reads the page's choice.
func (l *link) grantPage(ctx context.Context, dc *rtc.Stream, origin string, src *transfer.Source) (transport, Path, error) {
	plan := l.pathPlan()
	purpose := purposeUpload
	if src != nil {
		purpose = purposeDownload
	}
	why := plan.why // the origin is the server's to check (pagehttp.Grant)
	var c *pagehttp.Capability
	var conn transport
	if why == "" {
		var err error
		c, conn, err = l.capability(ctx, plan, origin, src)
		if err != nil {
			why = err.Error()
		}
	}
	if c == nil {
		l.cfg.Logger.Info("node: no HTTP path to the page; using the data channel", "peer", l.remote, "why", why)
		if err := l.refusePage(dc, why); err != nil {
			return nil, "", fmt.Errorf("node: HTTP path: %w", err)
		}
		return dc, plan.taken(false), nil
	}
	nctx, done := negotiating(ctx, dc)
	defer done()
	var choice pageChoice
	err := direct.WriteMessage(dc, pageGrant{V: direct.Version, Base: c.URL, Purpose: purpose, ManifestSHA256: c.ManifestSHA256()})
	if err == nil {
		err = direct.ReadMessage(dc, &choice)
	}
	switch {
	case err != nil && nctx.Err() != nil:
		err = fmt.Errorf("node: HTTP path: %s did not answer within %s", l.remote, negotiateTimeout)
	case err != nil:
		err = fmt.Errorf("node: HTTP path: %w", err)
	case choice.Path != string(PathHTTP):
		l.cfg.Logger.Info("node: the page cannot reach lanft over HTTP; using the data channel", "peer", l.remote, "why", transfer.DisplayName(choice.Why))
		conn.Close()
		return dc, plan.taken(false), nil
	default:
		if src == nil && choice.ManifestSHA256 == "" {
			l.cfg.Logger.Info("node: the page binds no list of files to the verified channel (an older page); its list over HTTP is unchecked", "peer", l.remote)
		}
		return &pageTransport{transport: conn, dc: dc, manifest: choice.ManifestSHA256}, PathHTTP, nil
	}
	conn.Close()
	return nil, "", err
}

// capability asks the server for a capability of the page's purpose,
// bound to the page's address and origin.
func (l *link) capability(ctx context.Context, plan pathPlan, origin string, src *transfer.Source) (*pagehttp.Capability, transport, error) {
	g := pagehttp.Grant{Local: plan.local, Peer: plan.remote, Origin: origin}
	if src == nil {
		c, st, err := l.cfg.Pages.Upload(ctx, g)
		if err != nil {
			return nil, nil, err
		}
		return c, st, nil // closing the stream revokes its capability
	}
	d := newPageDownload(src.Manifest())
	d.resumed = func(file string, from int64) {
		l.cfg.Events(Event{Kind: EventInfo, Peer: l.remote, File: file, Done: from, Text: fmt.Sprintf(
			"%s's browser resumes %s from %s", l.remote, transfer.DisplayName(file), transfer.FormatSize(from))})
	}
	c, err := l.cfg.Pages.Download(ctx, g, src, d.progress)
	if err != nil {
		return nil, nil, err
	}
	d.access = c
	return c, d, nil
}

// pageTransport is a transport of the HTTP path, with the data channel the
// capability came over: closed with it, but never the other way round.
type pageTransport struct {
	transport
	dc       io.Closer
	manifest string // an upload's manifest_sha256, from the page's choice
	once     sync.Once
}

func (t *pageTransport) Close() error {
	err := t.transport.Close()
	t.once.Do(func() { t.dc.Close() })
	return err
}

func (t *pageTransport) Linger(d time.Duration) error {
	err := t.transport.Linger(d)
	t.once.Do(func() { t.dc.Close() })
	return err
}

// bindManifest returns opts with a CheckManifest that refuses a list of
// files other than the one the page hashed over the verified channel,
// when conn is an HTTP upload whose page sent that hash; opts otherwise.
// Every receive over a transport of pagePath goes through it.
func bindManifest(conn transport, opts transfer.ReceiveOptions) transfer.ReceiveOptions {
	if t, ok := conn.(*pageTransport); ok && t.manifest != "" {
		opts.CheckManifest = manifestCheck(t.manifest)
	}
	return opts
}

// manifestCheck is a transfer.ReceiveOptions.CheckManifest for a list
// whose SHA-256 (lowercase hex) came over the verified channel.
func manifestCheck(want string) func(raw []byte) error {
	return func(raw []byte) error {
		sum := sha256.Sum256(raw)
		if hex.EncodeToString(sum[:]) != want {
			return errors.New("its SHA-256 is not the one the page gave over the verified connection: something between the page and lanft changed it over HTTP")
		}
		return nil
	}
}

// errNotStream: a download over HTTP carries no transfer frames.
var errNotStream = errors.New("node: a download over HTTP is no byte stream")

// pageDownload is the download capability: the page fetches the files
// itself, each by its link or all as one ZIP; it is done once every file
// (empty ones aside: there is nothing to fetch) or the ZIP was sent to its
// last byte.
type pageDownload struct {
	access *pagehttp.Capability // the page's capability
	m      *transfer.Manifest
	report atomic.Pointer[func(transfer.Progress)]
	all    chan struct{} // closed once the page has everything
	// resumed, if set, hears of a request that starts within a file (a
	// download manager resuming with Range).
	resumed func(file string, from int64)

	mu     sync.Mutex
	left   map[int]bool      // files not yet sent complete
	have   map[int]int64     // per file, the furthest byte sent
	zipped int64             // the furthest ZIP content sent
	told   map[[2]int64]bool // the resumes told: file and offset
	ended  bool
}

func newPageDownload(m *transfer.Manifest) *pageDownload {
	d := &pageDownload{m: m, all: make(chan struct{}), left: map[int]bool{}, have: map[int]int64{}, told: map[[2]int64]bool{}}
	for i, e := range m.Entries {
		if e.Kind == transfer.KindFile && e.Size > 0 {
			d.left[i] = true
		}
	}
	if len(d.left) == 0 {
		d.ended = true
		close(d.all)
	}
	return d
}

// progress hears the server's reports of every file request.
func (d *pageDownload) progress(p pagehttp.DownloadProgress) {
	d.mu.Lock()
	resumed := p.File >= 0 && p.Start > 0 && !d.told[[2]int64{int64(p.File), p.Start}]
	if resumed {
		d.told[[2]int64{int64(p.File), p.Start}] = true
	}
	if p.File < 0 {
		d.zipped = max(d.zipped, p.Sent)
	} else {
		d.have[p.File] = max(d.have[p.File], p.Start+p.Sent)
	}
	if p.Complete() {
		if p.File < 0 {
			clear(d.left)
		}
		delete(d.left, p.File)
	}
	var done int64
	for _, n := range d.have {
		done += n
	}
	done = max(done, d.zipped)
	finished := len(d.left) == 0 && !d.ended
	if finished {
		d.ended = true
		close(d.all)
	}
	d.mu.Unlock()
	if resumed && d.resumed != nil {
		d.resumed(d.m.Entries[p.File].Path, p.Start)
	}
	if f := d.report.Load(); f != nil {
		(*f)(transfer.Progress{Done: done, Total: d.m.TotalSize()})
	}
}

func (d *pageDownload) Read([]byte) (int, error)   { return 0, errNotStream }
func (d *pageDownload) Write([]byte) (int, error)  { return 0, errNotStream }
func (d *pageDownload) Close() error               { d.access.Revoke(); return nil }
func (d *pageDownload) Linger(time.Duration) error { return d.Close() }

// download is the HTTP download under conn, or nil when conn carries the
// transfer protocol.
func download(conn transport) *pageDownload {
	if t, ok := conn.(*pageTransport); ok {
		d, _ := t.transport.(*pageDownload)
		return d
	}
	return nil
}

// serveOver serves src over conn: the transfer protocol (Source.Serve), or
// for a page's HTTP download the wait until the page has fetched every
// file once. Both report as transfer.Progress.
func serveOver(ctx context.Context, conn transport, src *transfer.Source, opts transfer.SendOptions) error {
	d := download(conn)
	if d == nil {
		return src.Serve(ctx, conn, opts)
	}
	if opts.Progress != nil {
		d.report.Store(&opts.Progress)
	}
	return d.wait(ctx)
}

// wait returns nil once the page has fetched every file (or the ZIP) in
// full, and an error when the capability ended first or ctx did.
func (d *pageDownload) wait(ctx context.Context) error {
	select {
	case <-d.all:
		return nil
	case <-d.access.Done():
	case <-ctx.Done():
		d.access.Revoke()
		return ctx.Err()
	}
	d.mu.Lock()
	left := len(d.left)
	d.mu.Unlock()
	return fmt.Errorf("the page saved %d of %d file(s) before its access ended (%w); receive again from the page to save the rest",
		d.m.Files()-left, d.m.Files(), d.access.Err())
}

// receiveVia agrees with the sharer on the transport of a receive: the
// HTTP path when the sharer is a page that offers it (receivePath's
// direct path otherwise).
func (l *link) receiveVia(ctx context.Context, dc *rtc.Stream) (transport, Path, error) {
	if l.pathPlan().page {
		return l.pagePath(ctx, dc, nil)
	}
	return l.receivePath(ctx, dc)
}

// shareVia agrees with the receiver on the transport of src: the HTTP
// path when the receiver is a page that takes it (sharePath's direct path
// otherwise). Run the transfer with serveOver.
func (l *link) shareVia(ctx context.Context, dc *rtc.Stream, src *transfer.Source) (transport, Path, error) {
	if l.pathPlan().page {
		return l.pagePath(ctx, dc, src)
	}
	return l.sharePath(ctx, dc)
}
