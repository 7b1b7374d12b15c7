package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// A receiver that fails while the sender is still streaming must tell it
// why, over a real TCP connection with data in flight.
func TestReceiverFailsMidStreamOverTCP(t *testing.T) {
	srcDir := t.TempDir()
	writeTree(t, srcDir, map[string]string{"s/a.txt": "first"})
	randomFile(t, filepath.Join(srcDir, "s", "m.bin"), 32<<20, 5)
	src := newSource(t, filepath.Join(srcDir, "s"))
	dir := t.TempDir()
	a, c := tcpPair(t)
	defer a.Close()
	var (
		wg       sync.WaitGroup
		serveErr error
		planted  bool
	)
	wg.Go(func() { serveErr = src.Serve(t.Context(), a, SendOptions{}) })
	_, err := Receive(t.Context(), c, ReceiveOptions{Dir: dir, Progress: func(p Progress) {
		if !planted && p.File == "s/a.txt" {
			planted = true
			writeTree(t, dir, map[string]string{"s/m.bin.part": "someone else's"})
		}
	}})
	wg.Wait()
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Receive: got %v, want ErrConflict", err)
	}
	if !errors.Is(serveErr, ErrConflict) || !errors.Is(serveErr, ErrRemote) {
		t.Errorf("Serve: got %v, want the receiver's ErrConflict", serveErr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "s", "m.bin.part")); string(b) != "someone else's" {
		t.Errorf("planted file changed to %d bytes", len(b))
	}
}
