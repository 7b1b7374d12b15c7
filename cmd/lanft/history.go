package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/transfer"
)

// historyFile is the history's file in the config folder, beside the pins:
// one JSON object a line (historyEntry), appended.
const historyFile = "history.jsonl"

// historyEntry is one send or receive of lanft send and lanft up.
type historyEntry struct {
	When      time.Time     `json:"when"`
	Direction string        `json:"direction"` // "received" or "sent"
	Peer      string        `json:"peer"`
	Device    string        `json:"device"`
	Trusted   bool          `json:"trusted,omitempty"`
	Dir       string        `json:"dir,omitempty"`
	Files     []historyItem `json:"files,omitempty"`
	Text      string        `json:"text,omitempty"`
	Error     string        `json:"error,omitempty"`
}

type historyItem struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// history appends to the history file of one config folder.
type history struct {
	path string
	mu   sync.Mutex
}

func openHistory(dir string) *history { return &history{path: filepath.Join(dir, historyFile)} }

// add appends e as one line.
func (h *history) add(e historyEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// entries reads the history, oldest first; a line it cannot read is skipped.
func (h *history) entries() ([]historyEntry, error) {
	f, err := os.Open(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	var out []historyEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e historyEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// receivedEntry is the history entry of a send lanft up took.
func receivedEntry(r node.Received, dir string) historyEntry {
	e := historyEntry{When: time.Now().UTC(), Direction: "received", Peer: r.Peer, Device: r.Device, Trusted: r.Trusted, Text: r.Offer.Text}
	if r.Manifest != nil {
		e.Dir = dir
		i := 0
		for _, m := range r.Manifest.Entries {
			if m.Kind != transfer.KindFile && m.Kind != transfer.KindStream {
				continue
			}
			p := m.Path
			if r.Result != nil && i < len(r.Result.Files) {
				p = r.Result.Files[i]
			}
			i++
			item := historyItem{Path: p, Size: m.Size, SHA256: m.SHA256}
			if m.Kind == transfer.KindStream && r.Err == nil {
				item.Size, item.SHA256 = fileSum(filepath.Join(dir, filepath.FromSlash(p)))
			}
			e.Files = append(e.Files, item)
		}
	}
	if r.Err != nil {
		e.Error = oneLine(r.Err)
	}
	return e
}

// sentEntry is the history entry of a send.
func sentEntry(to, device string, src *transfer.Source, text string, err error) historyEntry {
	e := historyEntry{When: time.Now().UTC(), Direction: "sent", Peer: to, Device: device, Text: text}
	if src != nil {
		for _, m := range src.Manifest().Entries {
			if m.Kind == transfer.KindFile || m.Kind == transfer.KindStream {
				e.Files = append(e.Files, historyItem{Path: m.Path, Size: m.Size, SHA256: m.SHA256})
			}
		}
	}
	if err != nil {
		e.Error = oneLine(err)
	}
	return e
}

// fileSum is the size and SHA-256 of a saved stream (verified on arrival
// against its trailer), for the history; empty if it cannot be read.
func fileSum(path string) (int64, string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, ""
	}
	return n, hex.EncodeToString(h.Sum(nil))
}
