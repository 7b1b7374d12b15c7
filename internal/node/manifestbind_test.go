package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanft/lanft/transfer"
)

// pipeTransport is one end of a net.Pipe as a transport.
type pipeTransport struct{ net.Conn }

func (p pipeTransport) Linger(time.Duration) error { return p.Close() }

// tamper relays the transfer frames from src to dst as a machine in the
// middle of plain HTTP can: every frame's payload with old replaced by
// new (a file's bytes and, in the MANIFEST, its SHA-256).
func tamper(dst io.Writer, src io.Reader, swaps map[string]string) error {
	for {
		var h [5]byte // transfer/frame.go: a type byte, a u32 length
		if _, err := io.ReadFull(src, h[:]); err != nil {
			return err
		}
		p := make([]byte, binary.BigEndian.Uint32(h[1:]))
		if _, err := io.ReadFull(src, p); err != nil {
			return err
		}
		for old, repl := range swaps {
			p = bytes.ReplaceAll(p, []byte(old), []byte(repl))
		}
		if _, err := dst.Write(append(h[:], p...)); err != nil {
			return err
		}
	}
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestHTTPUploadManifestBound: the file and its SHA-256 in the list,
// changed together on the way (the HTTP upload's stream crosses the LAN
// unencrypted), pass every check of transfer.Receive; bound to the
// manifest_sha256 the page gave over the verified channel
// (bindManifest), the receive refuses as corrupted and writes nothing.
func TestHTTPUploadManifestBound(t *testing.T) {
	orig, evil := []byte("the page's real file\n"), []byte("a neighbour's evil f\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), orig, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := transfer.NewSource(t.Context(), []string{filepath.Join(dir, "a.txt")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := src.Manifest().Encode() // the bytes the page hashes and sends
	if err != nil {
		t.Fatal(err)
	}
	swaps := map[string]string{string(orig): string(evil), hexSum(orig): hexSum(evil)}

	receive := func(bound string) (string, error) {
		sender, mitmIn := net.Pipe()
		mitmOut, receiver := net.Pipe()
		go tamper(mitmOut, mitmIn, swaps)
		go io.Copy(mitmIn, mitmOut) // the receiver's PLAN and OK, untouched
		go src.Serve(t.Context(), sender, transfer.SendOptions{})
		t.Cleanup(func() { sender.Close(); mitmIn.Close(); mitmOut.Close(); receiver.Close() })
		out := t.TempDir()
		conn := &pageTransport{transport: pipeTransport{receiver}, dc: io.NopCloser(nil), manifest: bound}
		_, err := transfer.Receive(t.Context(), conn, bindManifest(conn, transfer.ReceiveOptions{Dir: out}))
		return out, err
	}

	// Unbound (an older page), the change goes through: the attack is real.
	out, err := receive("")
	if err != nil {
		t.Fatalf("unbound, the tampered upload failed (%v): the test tampers with nothing", err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "a.txt")); !bytes.Equal(got, evil) {
		t.Fatalf("unbound, received %q, want the tampered %q", got, evil)
	}

	// Bound, it is refused before anything is written.
	out, err = receive(hexSum(raw))
	if !errors.Is(err, transfer.ErrIntegrity) {
		t.Fatalf("bound: %v, want an integrity error", err)
	}
	t.Logf("bound: %v", err)
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Fatalf("bound: %d entries written to the target folder, want none", len(left))
	}
}
