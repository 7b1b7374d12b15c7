package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// writeTree creates files under dir: a key ending in "/" is an empty folder.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// randomFile writes size pseudo-random bytes (seeded) to p.
func randomFile(t testing.TB, p string, size int64, seed uint64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	rng := rand.NewChaCha8(s)
	if _, err := io.CopyN(f, rng, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSum(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sumOf(b string) string {
	s := sha256.Sum256([]byte(b))
	return hex.EncodeToString(s[:])
}

// snapshot records everything under root: files by content hash, folders,
// and symbolic links by target, without following links.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	snap := make(map[string]string)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			snap[rel] = "link:" + target
		case d.IsDir():
			snap[rel] = "dir"
		default:
			snap[rel] = "file:" + fileSum(t, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// diffSnapshots describes what changed between two snapshots, or "".
func diffSnapshots(before, after map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if v, ok := after[k]; !ok {
			b.WriteString("removed " + k + "\n")
		} else if v != before[k] {
			b.WriteString("changed " + k + "\n")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[k]; !ok {
			b.WriteString("added " + k + "\n")
		}
	}
	return b.String()
}

// findParts lists the .part files under dir.
func findParts(t testing.TB, dir string) []string {
	t.Helper()
	var parts []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, PartSuffix) {
			parts = append(parts, p)
		}
		return nil
	})
	return parts
}

// runTransfer serves src to one Receive over net.Pipe and returns both
// outcomes.
func runTransfer(ctx context.Context, src *Source, ropts ReceiveOptions, sopts SendOptions) (*Result, error, error) {
	a, b := net.Pipe()
	var (
		wg       sync.WaitGroup
		serveErr error
	)
	wg.Go(func() {
		serveErr = src.Serve(ctx, a, sopts)
		a.Close()
	})
	res, err := Receive(ctx, b, ropts)
	b.Close()
	wg.Wait()
	return res, err, serveErr
}

// Raw frames for hostile senders.

func rawFrame(t frameType, payload []byte) []byte { return appendFrame(nil, t, payload) }

func manifestFrame(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	b, err := json.Marshal(wireManifest{Version: ProtocolVersion, Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	return rawFrame(frameManifest, b)
}

func fileEntry(path, content string) Entry {
	return Entry{Path: path, Kind: KindFile, Size: int64(len(content)), SHA256: sumOf(content)}
}

func dirEntry(path string) Entry { return Entry{Path: path, Kind: KindDir} }

func fileFrame(index uint32, off int64) []byte {
	return rawFrame(frameFile, encodeFileFrame(index, off))
}

func dataFrame(s string) []byte { return rawFrame(frameData, []byte(s)) }

var endFrame = rawFrame(frameEnd, nil)

// hostileReceive plays stream (raw frames) to Receive like a sender would:
// the first frame, then, once Receive has answered it, the rest. Whatever
// Receive sends is drained. With hangUp, the sender closes the connection
// after its last byte. It returns Receive's outcome.
func hostileReceive(t testing.TB, stream []byte, hangUp bool, opts ReceiveOptions) (*Result, error) {
	t.Helper()
	first, rest := stream, []byte(nil)
	if len(stream) >= headerLen {
		if n := headerLen + int(binary.BigEndian.Uint32(stream[1:headerLen])); n <= len(stream) {
			first, rest = stream[:n], stream[n:]
		}
	}
	a, b := net.Pipe()
	var wg sync.WaitGroup
	replied := make(chan struct{})
	wg.Go(func() {
		fr := newFrameReader(a, 4<<10)
		fr.next()
		close(replied)
		io.Copy(io.Discard, fr.r)
	})
	wg.Go(func() {
		a.Write(first)
		if rest != nil {
			<-replied
			a.Write(rest)
		}
		if hangUp {
			a.Close()
		}
	})
	res, err := Receive(t.Context(), b, opts)
	b.Close()
	wg.Wait()
	a.Close()
	return res, err
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
