package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDiskFullMidTransfer fills a small real filesystem (a tmpfs mounted
// for the test) while a file is arriving: the receive fails with ErrNoSpace
// and a clear message, the .part stays, nothing is presented as complete,
// and once space is freed the same receive resumes and verifies.
func TestDiskFullMidTransfer(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to mount a tmpfs, and CI=true: refusing to skip")
		}
		t.Skip("needs root to mount a tmpfs; skipped (it runs as root, as in CI)")
	}
	const fsSize, fileSize = 16 << 20, 12 << 20
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })

	srcDir := t.TempDir()
	randomFile(t, filepath.Join(srcDir, "movie.bin"), fileSize, 11)
	src := newSource(t, filepath.Join(srcDir, "movie.bin"))

	// Once a third has arrived, something else takes the rest of the disk.
	filler := filepath.Join(dir, "filler")
	filled := false
	res, err, _ := runTransfer(t.Context(), src, ReceiveOptions{
		Dir: dir,
		Progress: func(p Progress) {
			if !filled && p.Done > p.Total/3 {
				filled = true
				f, ferr := os.Create(filler)
				if ferr != nil {
					t.Error(ferr)
					return
				}
				buf := make([]byte, 1<<20)
				for ferr == nil {
					_, ferr = f.Write(buf)
				}
				f.Close()
			}
		},
	}, SendOptions{})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("got %v (result %+v), want ErrNoSpace", err, res)
	}
	if !strings.Contains(err.Error(), "movie.bin") || !strings.Contains(strings.ToLower(err.Error()), "space") {
		t.Fatalf("error %q does not say which file ran out of space", err)
	}
	t.Logf("disk full: %v", err)
	if _, statErr := os.Stat(filepath.Join(dir, "movie.bin")); statErr == nil {
		t.Fatal("the incomplete file was presented as complete")
	}
	fi, statErr := os.Stat(filepath.Join(dir, "movie.bin"+PartSuffix))
	if statErr != nil || fi.Size() == 0 {
		t.Fatalf("no .part kept to resume from: %v", statErr)
	}
	part := fi.Size()

	// Space comes back; the same receive resumes from the .part.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	res, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{Dir: dir}, SendOptions{})
	if err != nil || serveErr != nil {
		t.Fatalf("resume after freeing space: %v / %v", err, serveErr)
	}
	if res.Skipped != part || res.Bytes != fileSize-part {
		t.Fatalf("resumed with skipped %d, received %d; want %d kept and %d fetched", res.Skipped, res.Bytes, part, fileSize-part)
	}
	if got, want := fileSum(t, filepath.Join(dir, "movie.bin")), src.Manifest().Entries[0].SHA256; got != want {
		t.Fatalf("sha256 %s, want %s", got, want)
	}
}
