package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStreamArrivesIdentical: a stream of unknown size arrives whole, is
// verified by its trailer, and takes a free name beside an existing file.
func TestStreamArrivesIdentical(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "stdin"), []byte("someone else's"), 0o644)
	data := make([]byte, 3<<20+17)
	rand.NewChaCha8([32]byte{7}).Read(data)
	src, err := NewStreamSource("stdin", io.MultiReader(bytes.NewReader(data[:1000]), bytes.NewReader(data[1000:])))
	if err != nil {
		t.Fatal(err)
	}
	res, err, serr := runTransfer(context.Background(), src, ReceiveOptions{Dir: dir}, SendOptions{})
	if err != nil || serr != nil {
		t.Fatalf("receive: %v, send: %v", err, serr)
	}
	if len(res.Files) != 1 || res.Files[0] != "stdin (1)" || res.Bytes != int64(len(data)) {
		t.Fatalf("result %+v", res)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "stdin (1)"))
	if !bytes.Equal(got, data) {
		t.Fatal("the stream arrived altered")
	}
}

// TestStreamTrailerChecked: a sender whose trailer does not match what it
// sent (or that sends none) gets nothing renamed.
func TestStreamTrailerChecked(t *testing.T) {
	data := []byte("the stream's bytes")
	good := sha256.Sum256(data)
	bad := sha256.Sum256([]byte("other"))
	for name, trailer := range map[string][]byte{
		"wrong hash": appendFrame(nil, frameTrailer, encodeTrailer(int64(len(data)), bad[:])),
		"wrong size": appendFrame(nil, frameTrailer, encodeTrailer(int64(len(data))+1, good[:])),
		"no trailer": nil,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			a, b := net.Pipe()
			defer a.Close()
			go func() {
				defer b.Close()
				fr := newFrameReader(b, maxDataLen)
				m, _ := encodeManifest(&Manifest{Entries: []Entry{{Path: "s", Kind: KindStream}}})
				b.Write(appendFrame(nil, frameManifest, m))
				if typ, _, err := fr.next(); err != nil || typ != framePlan {
					return
				}
				b.Write(appendFrame(nil, frameFile, encodeFileFrame(0, 0)))
				b.Write(appendFrame(nil, frameData, data))
				b.Write(trailer)
				b.Write(appendFrame(nil, frameEnd, nil))
				io.Copy(io.Discard, b)
			}()
			_, err := Receive(context.Background(), a, ReceiveOptions{Dir: dir})
			if !errors.Is(err, ErrIntegrity) {
				t.Fatalf("got %v, want ErrIntegrity", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "s")); !os.IsNotExist(err) {
				t.Fatalf("an unverified stream was renamed into place: %v", err)
			}
		})
	}
}

// TestStreamManifestChecks: a stream entry with a size or hash is refused.
func TestStreamManifestChecks(t *testing.T) {
	for _, e := range []Entry{{Path: "s", Kind: KindStream, Size: 3}, {Path: "s", Kind: KindStream, SHA256: strings.Repeat("0", 64)}} {
		if err := ValidateManifest(&Manifest{Entries: []Entry{e}}); err == nil {
			t.Errorf("accepted %+v", e)
		}
	}
}
