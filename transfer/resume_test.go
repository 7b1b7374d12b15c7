package transfer

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestResume(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MiB several times")
	}
	const size = 64 << 20
	srcDir := t.TempDir()
	randomFile(t, filepath.Join(srcDir, "big.bin"), size, 7)
	src := newSource(t, filepath.Join(srcDir, "big.bin"))
	want := src.Manifest().Entries[0].SHA256

	// cancelHalfway stops a Receive by cancelling its context once half the
	// file has arrived, and returns the size of the .part left behind.
	cancelHalfway := func(t *testing.T, dir string) int64 {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		res, err, serveErr := runTransfer(ctx, src, ReceiveOptions{
			Dir: dir,
			Progress: func(p Progress) {
				if p.Done > p.Total/2 {
					cancel()
				}
			},
		}, SendOptions{})
		if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) ||
			!strings.Contains(err.Error(), `"big.bin"`) || !strings.Contains(err.Error(), "the partial file is kept") {
			t.Fatalf("interrupted Receive: got %v, want ErrInterrupted naming big.bin", err)
		}
		if serveErr == nil {
			t.Fatal("Serve: got nil, want an error")
		}
		if len(res.Files) != 0 {
			t.Fatalf("interrupted Receive reported files %q", res.Files)
		}
		return partSize(t, dir)
	}

	// dropHalfway cuts the connection from the sender's side instead.
	dropHalfway := func(t *testing.T, dir string) int64 {
		t.Helper()
		a, b := net.Pipe()
		var wg sync.WaitGroup
		wg.Go(func() {
			src.Serve(t.Context(), a, SendOptions{Progress: func(p Progress) {
				if p.Done > p.Total/2 {
					a.Close()
				}
			}})
		})
		_, err := Receive(t.Context(), b, ReceiveOptions{Dir: dir})
		b.Close()
		wg.Wait()
		if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "connection to the sender lost while receiving \"big.bin\"") {
			t.Fatalf("dropped Receive: got %v, want ErrInterrupted", err)
		}
		return partSize(t, dir)
	}

	tests := []struct {
		name      string
		interrupt func(*testing.T, string) int64
		damage    func(t *testing.T, part string, have int64)
		reused    bool // whether the .part prefix is kept
	}{
		{name: "cancelled, then resumed", interrupt: cancelHalfway, reused: true},
		{name: "connection dropped, then resumed", interrupt: dropHalfway, reused: true},
		{name: "corrupted part is fetched again", interrupt: cancelHalfway, damage: func(t *testing.T, part string, _ int64) {
			f, err := os.OpenFile(part, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b := make([]byte, 1)
			if _, err := f.ReadAt(b, 1000); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0xff
			if _, err := f.WriteAt(b, 1000); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "part longer than the file is fetched again", interrupt: cancelHalfway, damage: func(t *testing.T, part string, have int64) {
			randomFile(t, part, size+10, 9)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			have := tc.interrupt(t, dir)
			if have < size/2 || have >= size {
				t.Fatalf("partial file has %d bytes, want at least half of %d and less than all", have, size)
			}
			if _, err := os.Stat(filepath.Join(dir, "big.bin")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("big.bin exists after an interrupted transfer: %v", err)
			}
			if tc.damage != nil {
				tc.damage(t, filepath.Join(dir, "big.bin"+PartSuffix), have)
			}

			var first *Progress
			res, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{
				Dir: dir,
				Progress: func(p Progress) {
					if first == nil {
						first = &p
					}
				},
			}, SendOptions{})
			if err != nil || serveErr != nil {
				t.Fatalf("resumed Receive: %v; Serve: %v", err, serveErr)
			}
			if got := fileSum(t, filepath.Join(dir, "big.bin")); got != want {
				t.Fatalf("big.bin SHA-256: got %s, want %s", got, want)
			}
			if parts := findParts(t, dir); len(parts) != 0 {
				t.Errorf("left .part files: %q", parts)
			}
			wantSkipped, wantBytes := int64(0), int64(size)
			if tc.reused {
				wantSkipped, wantBytes = have, size-have
				if res.Bytes > size*6/10 {
					t.Errorf("resumed transfer received %d bytes, want at most 60%% of %d", res.Bytes, size)
				}
			}
			if res.Skipped != wantSkipped || res.Bytes != wantBytes {
				t.Errorf("got Skipped=%d Bytes=%d, want Skipped=%d Bytes=%d", res.Skipped, res.Bytes, wantSkipped, wantBytes)
			}
			if first == nil || first.Done != wantSkipped || first.Total != size {
				t.Errorf("first progress: got %+v, want Done=%d Total=%d", first, wantSkipped, size)
			}
		})
	}
}

func partSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, "big.bin"+PartSuffix))
	if err != nil {
		t.Fatalf("partial file: %v", err)
	}
	return fi.Size()
}
