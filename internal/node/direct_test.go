package node

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lanft/lanft/signal"
)

func testSignal(t *testing.T) string {
	t.Helper()
	srv, err := signal.NewServer(signal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close(); srv.Close() })
	return "ws" + strings.TrimPrefix(hs.URL, "http") + signal.Path
}

// eventLog collects a node's events.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// paths returns the Path of every event of kind.
func (l *eventLog) paths(kind EventKind) []Path {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Path
	for _, e := range l.events {
		if e.Kind == kind {
			out = append(out, e.Path)
		}
	}
	return out
}

// TestTransferPath: two lanft nodes take the direct TCP path on their own
// and say so on the "peer" and "progress" events; either side forcing the
// data channel keeps the transfer there; the bytes are the same each time.
func TestTransferPath(t *testing.T) {
	url := testSignal(t)
	body := strings.Repeat("direct or not, the same bytes\n", 40000)
	testShare(t, url, "auto", map[string]string{"f.txt": body}, nil)
	testShare(t, url, "dconly", map[string]string{"f.txt": body}, func(c *Config) { c.Mode = ModeDataChannel })
	tests := []struct {
		name, from string
		mode       Mode // the receiver's --path
		want       Path
	}{
		{"both auto", "auto", "", PathTCP},
		{"both auto, spelled out", "auto", ModeAuto, PathTCP},
		{"receiver forces the data channel", "auto", ModeDataChannel, PathDataChannel},
		{"sharer forces the data channel", "dconly", "", PathDataChannel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var log eventLog
			_, err := testReceive(t, url, "r", tt.from, dir, func(c *Config) { c.Mode = tt.mode; c.Events = log.add })
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "f.txt"))
			if err != nil || string(b) != body {
				t.Fatalf("received %d bytes (%v), want the %d sent", len(b), err, len(body))
			}
			peer, progress := log.paths(EventPeer), log.paths(EventProgress)
			if len(peer) != 1 || peer[0] != tt.want {
				t.Fatalf("peer events say %v, want [%s]", peer, tt.want)
			}
			if len(progress) == 0 {
				t.Fatal("no progress event")
			}
			for _, p := range progress {
				if p != tt.want {
					t.Fatalf("a progress event says %q, want %q", p, tt.want)
				}
			}
		})
	}
}
