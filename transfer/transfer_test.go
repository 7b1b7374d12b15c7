package transfer

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// srcTree builds the sender side used by several tests and returns the
// paths to share.
func srcTree(t *testing.T) (srcDir string, paths []string) {
	t.Helper()
	srcDir = t.TempDir()
	writeTree(t, srcDir, map[string]string{
		"a.txt":                "alpha\n",
		"empty.bin":            "",
		"photos/x.jpg":         "not really a jpeg",
		"photos/sub/notes.txt": "deep",
		"photos/empty.txt":     "",
		"photos/empty/":        "",
		"photos/sub/deeper/":   "",
	})
	randomFile(t, filepath.Join(srcDir, "photos", "sub", "big.bin"), 3<<20+7, 1)
	if err := os.Chmod(filepath.Join(srcDir, "a.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if err := os.Symlink("/etc/passwd", filepath.Join(srcDir, "photos", "link")); err != nil {
			t.Fatal(err)
		}
	}
	return srcDir, []string{
		filepath.Join(srcDir, "a.txt"),
		filepath.Join(srcDir, "empty.bin"),
		filepath.Join(srcDir, "photos"),
	}
}

func newSource(t testing.TB, paths ...string) *Source {
	t.Helper()
	src, err := NewSource(t.Context(), paths, nil)
	if err != nil {
		t.Fatalf("NewSource: %v", err)
	}
	return src
}

func TestRoundTrip(t *testing.T) {
	srcDir, paths := srcTree(t)
	src := newSource(t, paths...)
	m := src.Manifest()

	wantPaths := []string{"a.txt", "empty.bin", "photos", "photos/empty", "photos/empty.txt",
		"photos/sub", "photos/sub/big.bin", "photos/sub/deeper", "photos/sub/notes.txt", "photos/x.jpg"}
	var gotPaths []string
	for _, e := range m.Entries {
		gotPaths = append(gotPaths, e.Path)
	}
	if !slices.Equal(gotPaths, wantPaths) {
		t.Fatalf("manifest paths: got %q, want %q (the symbolic link must be skipped)", gotPaths, wantPaths)
	}
	if got, want := m.Files(), 6; got != want {
		t.Errorf("Files() = %d, want %d", got, want)
	}

	dir := t.TempDir()
	var last, sent Progress
	var accepted *Manifest
	res, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{
		Dir:      dir,
		Accept:   func(_ context.Context, m *Manifest) error { accepted = m; return nil },
		Progress: func(p Progress) { last = p },
	}, SendOptions{Progress: func(p Progress) { sent = p }})
	if err != nil || serveErr != nil {
		t.Fatalf("Receive: %v; Serve: %v", err, serveErr)
	}
	if accepted == nil || len(accepted.Entries) != len(m.Entries) {
		t.Fatalf("Accept got %v, want the %d-entry manifest", accepted, len(m.Entries))
	}
	total := m.TotalSize()
	if res.Bytes != total || res.Skipped != 0 || len(res.Renamed) != 0 {
		t.Errorf("result: got Bytes=%d Skipped=%d Renamed=%v, want Bytes=%d Skipped=0 no renames", res.Bytes, res.Skipped, res.Renamed, total)
	}
	if last.Done != total || last.Total != total {
		t.Errorf("receiver's last progress: got %d/%d, want %d/%d", last.Done, last.Total, total, total)
	}
	if sent.Done != total || sent.Total != total {
		t.Errorf("sender's last progress: got %d/%d, want %d/%d", sent.Done, sent.Total, total, total)
	}
	wantFiles := []string{"a.txt", "empty.bin", "photos/empty.txt", "photos/sub/big.bin", "photos/sub/notes.txt", "photos/x.jpg"}
	if !slices.Equal(res.Files, wantFiles) {
		t.Errorf("Result.Files: got %q, want %q", res.Files, wantFiles)
	}

	// Same tree, same bytes, no leftovers, no symlink, no exec bits.
	want := snapshot(t, srcDir)
	delete(want, "photos/link")
	if d := diffSnapshots(want, snapshot(t, dir)); d != "" {
		t.Errorf("received tree differs from the source:\n%s", d)
	}
	if parts := findParts(t, dir); len(parts) != 0 {
		t.Errorf("left .part files: %q", parts)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(filepath.Join(dir, "a.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o111 != 0 {
			t.Errorf("a.txt mode: got %v, want no execute bits (the sender's mode is not applied)", fi.Mode())
		}
	}

	// Again: everything is already there.
	res, err, serveErr = runTransfer(t.Context(), src, ReceiveOptions{Dir: dir}, SendOptions{})
	if err != nil || serveErr != nil {
		t.Fatalf("second Receive: %v; Serve: %v", err, serveErr)
	}
	if res.Bytes != 0 || res.Skipped != total || len(res.Renamed) != 0 || !slices.Equal(res.Files, wantFiles) {
		t.Errorf("second result: got %+v, want nothing sent, %d bytes skipped", res, total)
	}
}

func TestConcurrentReceivers(t *testing.T) {
	_, paths := srcTree(t)
	src := newSource(t, paths...)
	var wg sync.WaitGroup
	dirs := make([]string, 3)
	errs := make([]error, 3)
	for i := range dirs {
		dirs[i] = t.TempDir()
		wg.Go(func() {
			_, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{Dir: dirs[i]}, SendOptions{})
			errs[i] = errors.Join(err, serveErr)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("receiver %d: %v", i, err)
		}
	}
	for _, d := range dirs[1:] {
		if diff := diffSnapshots(snapshot(t, dirs[0]), snapshot(t, d)); diff != "" {
			t.Errorf("receivers got different trees:\n%s", diff)
		}
	}
}

func TestExistingFiles(t *testing.T) {
	srcDir := t.TempDir()
	writeTree(t, srcDir, map[string]string{
		"a.txt":      "new content",
		"a (1).txt":  "listed too",
		"same.txt":   "same",
		"d.txt":      "file where a folder is",
		"arc.tar.gz": "tarball",
	})
	src := newSource(t,
		filepath.Join(srcDir, "a.txt"), filepath.Join(srcDir, "a (1).txt"), filepath.Join(srcDir, "same.txt"),
		filepath.Join(srcDir, "d.txt"), filepath.Join(srcDir, "arc.tar.gz"))

	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"a.txt":          "old content",
		"same.txt":       "same",
		"d.txt/":         "",
		"arc.tar.gz":     "other",
		"arc (1).tar.gz": "other too",
		"arc (2).tar.gz": "tarball", // identical: reused, not copied again
	})
	before := snapshot(t, dir)

	res, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{Dir: dir}, SendOptions{})
	if err != nil || serveErr != nil {
		t.Fatalf("Receive: %v; Serve: %v", err, serveErr)
	}
	after := snapshot(t, dir)
	for name, v := range before {
		if after[name] != v {
			t.Errorf("existing %q was changed", name)
		}
	}
	wantRenamed := map[string]string{
		"a.txt":      "a (2).txt", // "a (1).txt" is taken by the manifest itself
		"d.txt":      "d (1).txt",
		"arc.tar.gz": "arc (2).tar.gz",
	}
	if len(res.Renamed) != len(wantRenamed) {
		t.Errorf("Renamed: got %v, want %v", res.Renamed, wantRenamed)
	}
	for k, v := range wantRenamed {
		if res.Renamed[k] != v {
			t.Errorf("Renamed[%q]: got %q, want %q", k, res.Renamed[k], v)
		}
		if why := res.RenameReason(k); why != ReasonTaken {
			t.Errorf("RenameReason(%q) = %q, want %q", k, why, ReasonTaken)
		}
	}
	for name, content := range map[string]string{"a (2).txt": "new content", "a (1).txt": "listed too", "d (1).txt": "file where a folder is"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != content {
			t.Errorf("%s: got %q, %v; want %q", name, b, err, content)
		}
	}
	if want := int64(len("same") + len("tarball")); res.Skipped != want {
		t.Errorf("Skipped: got %d, want %d (identical files)", res.Skipped, want)
	}
}

func TestExistingFileWhereFolderGoes(t *testing.T) {
	srcDir := t.TempDir()
	writeTree(t, srcDir, map[string]string{"docs/a.txt": "a"})
	src := newSource(t, filepath.Join(srcDir, "docs"))
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"docs": "I am a file"})
	before := snapshot(t, dir)
	_, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{Dir: dir}, SendOptions{})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `"docs" already exists in the target folder and is not a folder`) {
		t.Fatalf("Receive: got %v, want ErrConflict naming docs", err)
	}
	if !errors.Is(serveErr, ErrConflict) || !errors.Is(serveErr, ErrRemote) {
		t.Errorf("Serve: got %v, want ErrRemote and ErrConflict", serveErr)
	}
	if d := diffSnapshots(before, snapshot(t, dir)); d != "" {
		t.Errorf("target folder changed:\n%s", d)
	}
}

func TestRejected(t *testing.T) {
	_, paths := srcTree(t)
	src := newSource(t, paths...)
	dir := t.TempDir()
	no := errors.New("user said no")
	_, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{
		Dir:    dir,
		Accept: func(context.Context, *Manifest) error { return no },
	}, SendOptions{})
	if !errors.Is(err, ErrRejected) || !errors.Is(err, no) {
		t.Errorf("Receive: got %v, want ErrRejected wrapping the Accept error", err)
	}
	if !errors.Is(serveErr, ErrRejected) || !errors.Is(serveErr, ErrRemote) || strings.Contains(serveErr.Error(), "user said no") {
		t.Errorf("Serve: got %v, want ErrRejected without the receiver's private reason", serveErr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("declined transfer wrote %d entries", len(entries))
	}
}

// TestDecline: a sender that declines sends an ERROR frame in place of the
// MANIFEST; the receiver sees a refusal with the reason, even an overlong one.
func TestDecline(t *testing.T) {
	for _, tc := range []struct{ name, reason, want string }{
		{"reason", "alice declined to send to bob", "alice declined to send to bob"},
		{"overlong reason", strings.Repeat("no", maxErrorLen), "nonono"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stream bytes.Buffer
			if err := Decline(&stream, tc.reason); err != nil {
				t.Fatalf("Decline: %v", err)
			}
			dir := t.TempDir()
			_, err := hostileReceive(t, stream.Bytes(), true, ReceiveOptions{Dir: dir})
			if !errors.Is(err, ErrRemote) || !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Receive: got %v, want ErrRemote and ErrRejected saying %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("declined transfer wrote %d entries", len(entries))
			}
		})
	}
}

func TestNoSpace(t *testing.T) {
	_, paths := srcTree(t)
	src := newSource(t, paths...)
	dir := t.TempDir()
	_, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{
		Dir:       dir,
		freeSpace: func(string) (uint64, error) { return 1 << 20, nil },
	}, SendOptions{})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "not enough free space in the target folder: the files need 3.0 MiB, 1.0 MiB is free") {
		t.Errorf("Receive: got %v, want ErrNoSpace with sizes", err)
	}
	if !errors.Is(serveErr, ErrNoSpace) {
		t.Errorf("Serve: got %v, want ErrNoSpace", serveErr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused transfer wrote %d entries", len(entries))
	}
}

func TestIsNoSpace(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("unix errno")
	}
	err := &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	if !isNoSpace(err) {
		t.Errorf("isNoSpace(%v) = false, want true", err)
	}
	if isNoSpace(fs.ErrPermission) {
		t.Errorf("isNoSpace(%v) = true, want false", fs.ErrPermission)
	}
}

func TestSourceChanged(t *testing.T) {
	srcDir := t.TempDir()
	writeTree(t, srcDir, map[string]string{"a.txt": "original"})
	src := newSource(t, filepath.Join(srcDir, "a.txt"))
	writeTree(t, srcDir, map[string]string{"a.txt": "edited, and longer"})
	dir := t.TempDir()
	_, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{Dir: dir}, SendOptions{})
	if !errors.Is(serveErr, ErrSourceChanged) || !strings.Contains(serveErr.Error(), `"a.txt" changed since it was shared`) {
		t.Errorf("Serve: got %v, want ErrSourceChanged", serveErr)
	}
	if !errors.Is(err, ErrRemote) || !errors.Is(err, ErrSourceChanged) {
		t.Errorf("Receive: got %v, want ErrRemote and ErrSourceChanged", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "a.txt")); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("a.txt was created: %v", statErr)
	}
}

func TestNewSource(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"one/x.txt":             "1",
		"two/x.txt":             "2",
		"bad/evil\u202etxt.exe": "a bidi override: unsafe everywhere",
	})
	if runtime.GOOS != "windows" {
		if err := os.Symlink(filepath.Join(dir, "one"), filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		paths []string
		want  error
		text  string
	}{
		{"nothing", nil, nil, "nothing to share"},
		{"same base name", []string{filepath.Join(dir, "one", "x.txt"), filepath.Join(dir, "two", "x.txt")}, nil, `would both arrive as "x.txt"`},
		{"missing", []string{filepath.Join(dir, "nope")}, fs.ErrNotExist, "cannot share"},
		{"unsafe name inside", []string{filepath.Join(dir, "bad")}, ErrUnsafeName, `refusing "bad/evil\u202etxt.exe": contains invisible formatting character U+202E`},
		{"filesystem root", []string{string(filepath.Separator)}, nil, "choose files or folders inside it"},
	}
	if runtime.GOOS != "windows" {
		tests = append(tests, struct {
			name  string
			paths []string
			want  error
			text  string
		}{"symbolic link", []string{filepath.Join(dir, "link")}, nil, "is a symbolic link"})
	}
	if runtime.GOOS != "windows" {
		// Names only some systems cannot hold are shared.
		writeTree(t, dir, map[string]string{"fine/a:b?": "only Windows cannot hold it"})
		src, err := NewSource(t.Context(), []string{filepath.Join(dir, "fine")}, nil)
		if err != nil || src.Manifest().Entries[1].Path != "fine/a:b?" {
			t.Errorf("sharing fine/a:b?: got %v", err)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSource(t.Context(), tc.paths, nil)
			if err == nil || !strings.Contains(err.Error(), tc.text) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("got %v, want an error containing %q", err, tc.text)
			}
		})
	}
}

func TestNewSourceCancelled(t *testing.T) {
	_, paths := srcTree(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := NewSource(ctx, paths, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
