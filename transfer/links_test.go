package transfer

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestPartHardLinkedOutside plants big.bin.part as a hard link to a file
// outside the target folder. Whether its content could be resumed (a prefix
// of the real file) or not (other bytes), and whether it carries lanft's
// tag of this very file (a local attacker can write one) or not, the
// transfer completes and the outside file is neither written nor truncated.
// Untagged, the .part is another file's: left alone, the file takes
// another name; tagged, it is replaced, not resumed.
func TestPartHardLinkedOutside(t *testing.T) {
	const size = 1 << 20
	srcDir := t.TempDir()
	srcPath := filepath.Join(srcDir, "big.bin")
	randomFile(t, srcPath, size, 11)
	src := newSource(t, srcPath)

	prefix := func(t *testing.T, victim string) {
		f, err := os.Open(srcPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, size/3)
		if _, err := io.ReadFull(f, b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(victim, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := func(t *testing.T, victim string) { randomFile(t, victim, size/2, 12) }

	for name, fill := range map[string]func(*testing.T, string){
		"victim holds a prefix of the file": prefix,
		"victim holds other bytes":          other,
	} {
		for _, tagged := range []bool{false, true} {
			testPartHardLinked(t, fmt.Sprintf("%s, tagged %v", name, tagged), src, fill, tagged)
		}
	}
}

func testPartHardLinked(t *testing.T, name string, src *Source, fill func(*testing.T, string), tagged bool) {
	const size = 1 << 20
	want := src.Manifest().Entries[0].SHA256
	{
		t.Run(name, func(t *testing.T) {
			outside, dir := t.TempDir(), t.TempDir()
			victim := filepath.Join(outside, "victim")
			fill(t, victim)
			before, err := os.ReadFile(victim)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Link(victim, filepath.Join(dir, "big.bin"+PartSuffix)); err != nil {
				t.Skipf("cannot make a hard link here: %v", err)
			}
			final := "big (1).bin"
			if tagged {
				tagFile(t, victim, want)
				final = "big.bin"
			}

			res, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{Dir: dir}, SendOptions{})
			if err != nil || serveErr != nil {
				t.Fatalf("Receive: %v; Serve: %v", err, serveErr)
			}
			if got := fileSum(t, filepath.Join(dir, final)); got != want || len(res.Files) != 1 || res.Files[0] != final {
				t.Fatalf("%s SHA-256: got %s, want %s (files %q)", final, got, want, res.Files)
			}
			if res.Skipped != 0 || res.Bytes != size {
				t.Errorf("got Skipped=%d Bytes=%d: a linked .part must be fetched again, not resumed", res.Skipped, res.Bytes)
			}
			after, err := os.ReadFile(victim)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("the file outside the folder changed: %d bytes before, %d after", len(before), len(after))
			}
			if parts := findParts(t, dir); tagged && len(parts) != 0 || !tagged && len(parts) != 1 {
				t.Errorf("left .part files: %q, want the untagged one only", parts)
			}
		})
	}
}
