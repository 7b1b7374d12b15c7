package pagehttp

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// events collects a download's progress reports.
type events chan DownloadProgress

func (ev events) report(p DownloadProgress) {
	select {
	case ev <- p:
	default:
	}
}

// waitDone returns the next report of a request that ended.
func (ev events) waitDone(t *testing.T, file int) DownloadProgress {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case p := <-ev:
			if p.Done && p.File == file {
				return p
			}
		case <-deadline:
			t.Fatalf("no end of a request for file %d reported", file)
		}
	}
}

// waitEnds returns the first end reported for each of files, in any order.
func (ev events) waitEnds(t *testing.T, files ...int) map[int]DownloadProgress {
	t.Helper()
	got := make(map[int]DownloadProgress)
	deadline := time.After(30 * time.Second)
	for len(got) < len(files) {
		select {
		case p := <-ev:
			if _, seen := got[p.File]; p.Done && !seen && slices.Contains(files, p.File) {
				got[p.File] = p
			}
		case <-deadline:
			t.Fatalf("ends reported for %v of files %v", slices.Collect(maps.Keys(got)), files)
		}
	}
	return got
}

func TestDownloadFile(t *testing.T) {
	dir := t.TempDir()
	name := "Résumé ☀ \"2024\".bin"
	want := randomFile(t, filepath.Join(dir, name), 3<<20+17, 1)
	src := newSource(t, filepath.Join(dir, name))
	s := newServer(t, Config{})
	ev := make(events, 64)
	c := download(t, s, src, ev.report)
	hc := client(t, peer)

	if st, _, b := do(t, hc, req(t, "GET", c.URL+"hello", nil, true)); st != http.StatusNoContent || len(b) != 0 {
		t.Errorf("hello: %d %q, want 204 and nothing", st, b)
	}
	st, _, b := do(t, hc, req(t, "GET", c.URL+"manifest", nil, true))
	if wantM, _ := src.Manifest().Encode(); st != 200 || !bytes.Equal(b, wantM) {
		t.Errorf("manifest: %d %s, want 200 %s", st, b, wantM)
	}
	// What the page is told over its verified channel is the hash of
	// exactly the bytes served.
	if sum := sha256.Sum256(b); c.ManifestSHA256() != hex.EncodeToString(sum[:]) {
		t.Errorf("ManifestSHA256 %q, want the served bytes' %x", c.ManifestSHA256(), sum)
	}

	st, h, b := do(t, hc, req(t, "GET", c.URL+"f/0", nil, false))
	if st != 200 || !same(b, want) {
		t.Fatalf("f/0: status %d, %d bytes, identical %v; want 200 and the file", st, len(b), same(b, want))
	}
	sum := src.Manifest().Entries[0].SHA256
	for k, v := range map[string]string{
		"Content-Length":      strconv.Itoa(len(want)),
		"ETag":                `"` + sum + `"`,
		"Accept-Ranges":       "bytes",
		"Content-Disposition": `attachment; filename="R_sum_ _ _2024_.bin"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%E2%98%80%20%222024%22.bin`,
		"Content-Type":        "application/octet-stream",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if p := ev.waitDone(t, 0); !p.Complete() || p.Sent != int64(len(want)) {
		t.Errorf("progress at the end: %+v, want complete with %d sent", p, len(want))
	}
	// With the Origin a fetch sends: CORS for that origin only.
	_, h, _ = do(t, hc, req(t, "HEAD", c.URL+"f/0", nil, true))
	if got := h.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("Access-Control-Allow-Origin %q, want %q", got, origin)
	}
}

func TestDownloadResume(t *testing.T) {
	dir := t.TempDir()
	// Larger than loopback's socket buffers, so a cut client stops the server.
	want := randomFile(t, filepath.Join(dir, "big.bin"), 48<<20, 2)
	src := newSource(t, filepath.Join(dir, "big.bin"))
	s := newServer(t, Config{})
	ev := make(events, 256)
	c := download(t, s, src, ev.report)
	hc := client(t, peer)
	etag := `"` + src.Manifest().Entries[0].SHA256 + `"`

	// A download cut after 5 MiB.
	resp, err := hc.Do(req(t, "GET", c.URL+"f/0", nil, false))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5<<20)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p := ev.waitDone(t, 0); p.Complete() || p.Err == nil {
		t.Errorf("a cut download reported %+v, want incomplete with an error", p)
	}

	// Resumed with Range and If-Range: the rest, and the whole is identical.
	r := req(t, "GET", c.URL+"f/0", nil, false)
	r.Header.Set("Range", fmt.Sprintf("bytes=%d-", len(got)))
	r.Header.Set("If-Range", etag)
	st, h, rest := do(t, hc, r)
	if st != http.StatusPartialContent || h.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", len(got), len(want)-1, len(want)) {
		t.Fatalf("resume: %d %q, want 206 with the rest", st, h.Get("Content-Range"))
	}
	if !same(append(got, rest...), want) {
		t.Fatal("the resumed download differs from the file")
	}
	if p := ev.waitDone(t, 0); !p.Complete() || p.Start != int64(len(got)) {
		t.Errorf("resumed download reported %+v, want complete from %d", p, len(got))
	}

	// Another version's ETag in If-Range: the whole file again.
	r = req(t, "GET", c.URL+"f/0", nil, false)
	r.Header.Set("Range", "bytes=100-")
	r.Header.Set("If-Range", `"`+strings.Repeat("0", 64)+`"`)
	if st, _, b := do(t, hc, r); st != 200 || !same(b, want) {
		t.Errorf("If-Range of another version: %d, %d bytes; want 200 and the whole file", st, len(b))
	}
	r = req(t, "GET", c.URL+"f/0", nil, false)
	r.Header.Set("Range", fmt.Sprintf("bytes=%d-", len(want)))
	if st, _, _ := do(t, hc, r); st != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: %d, want 416", st)
	}
	r = req(t, "GET", c.URL+"f/0", nil, false)
	r.Header.Set("If-None-Match", etag)
	if st, _, _ := do(t, hc, r); st != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: %d, want 304", st)
	}
}

func TestDownloadChangedFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.txt")
	randomFile(t, p, 1000, 3)
	src := newSource(t, p)
	s := newServer(t, Config{})
	c := download(t, s, src, nil)
	randomFile(t, p, 1001, 4)
	hc := client(t, peer)
	for _, name := range []string{"f/0", "zip"} {
		if st, _, b := do(t, hc, req(t, "GET", c.URL+name, nil, false)); st != http.StatusConflict || len(b) != 0 {
			t.Errorf("%s of a changed file: %d with %d bytes, want 409 and nothing", name, st, len(b))
		}
	}
}

// files maps manifest paths to content.
type files map[string][]byte

func writeFiles(t *testing.T, dir string, fs files) {
	t.Helper()
	for p, b := range fs {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fetchZip GETs the zip into a file and returns its path.
func fetchZip(t *testing.T, url string) string {
	t.Helper()
	resp, err := client(t, peer).Do(req(t, "GET", url, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("zip: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := filepath.Join(t.TempDir(), "got.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Fatalf("zip body: %v", err)
	}
	return p
}

// unzipTest runs unzip -t on p, when unzip is there.
func unzipTest(t *testing.T, p string) {
	t.Helper()
	if _, err := exec.LookPath("unzip"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("unzip is needed on CI")
		}
		t.Log("unzip not installed: zip not checked with it")
		return
	}
	if out, err := exec.Command("unzip", "-tqq", p).CombinedOutput(); err != nil {
		t.Fatalf("unzip -t: %v\n%s", err, out)
	}
}

func TestDownloadZip(t *testing.T) {
	dir := t.TempDir()
	want := files{
		"photos/a.jpg":            randomFile(t, filepath.Join(t.TempDir(), "x"), 300<<10, 5),
		"photos/2024/été/b.bin":   randomFile(t, filepath.Join(t.TempDir(), "x"), 1<<20+3, 6),
		"photos/2024/empty.txt":   {},
		"photos/notes/readme.txt": []byte("hello\n"),
	}
	writeFiles(t, dir, want)
	if err := os.Mkdir(filepath.Join(dir, "photos", "empty folder"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, filepath.Join(dir, "photos"))
	s := newServer(t, Config{})
	ev := make(events, 64)
	c := download(t, s, src, ev.report)
	_, h, _ := do(t, client(t, peer), req(t, "HEAD", c.URL+"zip", nil, false))
	if got := h.Get("Content-Disposition"); got != `attachment; filename="photos.zip"; filename*=UTF-8''photos.zip` {
		t.Errorf("zip Content-Disposition %q", got)
	}
	p := fetchZip(t, c.URL+"zip")
	unzipTest(t, p)
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	got := make(files)
	dirs := make(map[string]bool)
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			dirs[f.Name] = true
			continue
		}
		if f.Method != zip.Store {
			t.Errorf("%s: method %d, want Store", f.Name, f.Method)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc) // checks the CRC
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		got[f.Name] = b
	}
	if len(got) != len(want) {
		t.Errorf("zip holds %d files, want %d", len(got), len(want))
	}
	for name, b := range want {
		if !same(got[name], b) {
			t.Errorf("%s differs in the zip (%d bytes, want %d)", name, len(got[name]), len(b))
		}
	}
	for _, d := range []string{"photos/", "photos/2024/", "photos/2024/été/", "photos/empty folder/"} {
		if !dirs[d] {
			t.Errorf("folder %q missing from the zip", d)
		}
	}
	var total int64
	for _, b := range want {
		total += int64(len(b))
	}
	if p := ev.waitDone(t, -1); !p.Complete() || p.Size != total {
		t.Errorf("zip progress at the end: %+v, want complete with %d", p, total)
	}
}

// TestDownloadZip64 zips more entries than a plain zip holds (65535), so
// archive/zip writes Zip64 records; unzip and archive/zip must read them.
// It writes 66,000 files (from 7 s to a minute on a loaded machine), so it
// runs only with LANFT_BIG=1.
func TestDownloadZip64(t *testing.T) {
	if os.Getenv("LANFT_BIG") != "1" {
		t.Skip("writes 66,000 files; set LANFT_BIG=1 to run it")
	}
	dir := t.TempDir()
	const n = 66_000
	for i := range n {
		d := filepath.Join(dir, "many", strconv.Itoa(i/1000))
		if i%1000 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := newSource(t, filepath.Join(dir, "many"))
	s := newServer(t, Config{})
	c := download(t, s, src, nil)
	p := fetchZip(t, c.URL+"zip")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b[max(0, len(b)-200):], []byte("PK\x06\x06")) {
		t.Error("no Zip64 end of central directory record")
	}
	unzipTest(t, p)
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(src.Manifest().Entries); len(zr.File) != want {
		t.Fatalf("zip holds %d entries, want %d", len(zr.File), want)
	}
	f := zr.File[len(zr.File)-1]
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || filepath.Base(f.Name) != string(got) {
		t.Errorf("last entry %s holds %q (%v)", f.Name, got, err)
	}
}

// TestDownloadZipHuge zips a sparse file past 4 GiB, so its sizes and
// offsets need Zip64. It moves 4 GiB through loopback (a minute or more on
// a loaded machine), so it runs only with LANFT_BIG=1.
func TestDownloadZipHuge(t *testing.T) {
	if os.Getenv("LANFT_BIG") != "1" {
		t.Skip("zips a 4 GiB file; set LANFT_BIG=1 to run it")
	}
	dir := filepath.Join(t.TempDir(), "huge")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "sparse.bin"))
	if err != nil {
		t.Fatal(err)
	}
	const size = 4<<30 + 4
	if _, err := f.WriteAt([]byte("tail"), size-4); err != nil {
		t.Fatal(err)
	}
	f.Close()
	writeFiles(t, dir, files{"after.txt": []byte("after the big one")})
	src := newSource(t, dir)
	s := newServer(t, Config{})
	c := download(t, s, src, nil)
	p := fetchZip(t, c.URL+"zip")
	unzipTest(t, p)
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	sums := make(map[string]string)
	for _, e := range src.Manifest().Entries {
		sums[e.Path] = e.SHA256
	}
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if got := fmt.Sprintf("%x", h.Sum(nil)); err != nil || got != sums[zf.Name] {
			t.Errorf("%s (%d bytes in the zip): %v, sha256 %s, want %s", zf.Name, zf.UncompressedSize64, err, got, sums[zf.Name])
		}
	}
}
