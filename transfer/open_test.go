package transfer

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSourceOpen(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"share/a.txt": "alpha", "share/sub/b.txt": "bravo"})
	src, err := NewSource(t.Context(), []string{filepath.Join(dir, "share")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := src.Manifest()
	for i, e := range m.Entries {
		f, got, err := src.Open(i)
		if e.Kind == KindDir {
			if err == nil {
				f.Close()
				t.Errorf("Open(%d) of folder %q: no error", i, e.Path)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Open(%d): %v", i, err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got != e || sumOf(string(b)) != e.SHA256 {
			t.Errorf("Open(%d) = %+v with %q, want %+v", i, got, b, e)
		}
	}
	if _, _, err := src.Open(len(m.Entries)); err == nil {
		t.Error("Open past the end: no error")
	}
	if _, _, err := src.Open(-1); err == nil {
		t.Error("Open(-1): no error")
	}

	// A file changed (same size, new mtime) or removed since hashing is refused.
	idx := func(p string) int {
		for i, e := range m.Entries {
			if e.Path == p {
				return i
			}
		}
		t.Fatalf("no entry %q", p)
		return -1
	}
	a := filepath.Join(dir, "share", "a.txt")
	if err := os.WriteFile(a, []byte("ALPHA"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(a, later, later); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Open(idx("share/a.txt")); !errors.Is(err, ErrSourceChanged) {
		t.Errorf("Open of a changed file: %v, want ErrSourceChanged", err)
	}
	if err := os.Remove(filepath.Join(dir, "share", "sub", "b.txt")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Open(idx("share/sub/b.txt")); !errors.Is(err, ErrSourceChanged) {
		t.Errorf("Open of a removed file: %v, want ErrSourceChanged", err)
	}
}

func TestManifestEncode(t *testing.T) {
	m := &Manifest{Entries: []Entry{dirEntry("d"), fileEntry("d/x", "x")}}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeManifest(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	var w struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &w); err != nil || w.Version != ProtocolVersion {
		t.Errorf("version %d (%v), want %d", w.Version, err, ProtocolVersion)
	}
	if len(got.Entries) != 2 || got.Entries[1] != m.Entries[1] {
		t.Errorf("round trip %+v, want %+v", got.Entries, m.Entries)
	}
}
