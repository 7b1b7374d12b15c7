package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/signal"
)

// floodResult counts what a flood's connections got.
type floodResult struct {
	mu         sync.Mutex
	loggedIn   int
	loginNo    map[string]int // refusal reason -> count
	connNo     map[string]int // 429 body -> count
	otherErr   []string
	open       []*websocket.Conn
	readersOut atomic.Int64 // logged-in connections the host closed
}

// floodFrom dials n connections to url from source address ip, each
// logging in with meta, workers at a time.
// Connections stay open, reading everything they are sent, until the
// test ends.
func floodFrom(t *testing.T, url, ip string, meta json.RawMessage, n, workers int) *floodResult {
	t.Helper()
	res := &floodResult{loginNo: map[string]int{}, connNo: map[string]int{}}
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	d := websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 10 * time.Second}
	var readers sync.WaitGroup
	t.Cleanup(func() {
		res.mu.Lock()
		for _, ws := range res.open {
			ws.Close()
		}
		res.mu.Unlock()
		readers.Wait()
	})
	one := func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ws, resp, err := d.DialContext(ctx, url, nil)
		if err != nil {
			res.mu.Lock()
			defer res.mu.Unlock()
			if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
				body, _ := io.ReadAll(resp.Body)
				res.connNo[strings.TrimSpace(string(body))]++
				return
			}
			res.otherErr = append(res.otherErr, err.Error())
			return
		}
		res.mu.Lock()
		res.open = append(res.open, ws)
		res.mu.Unlock()
		login, _ := json.Marshal(signal.Message{Type: signal.TypeLogin, Name: fmt.Sprintf("flood%04d", i), Meta: meta})
		_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, login); err != nil {
			res.mu.Lock()
			res.otherErr = append(res.otherErr, err.Error())
			res.mu.Unlock()
			return
		}
		ws.SetReadLimit(8 << 20)
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				res.mu.Lock()
				res.otherErr = append(res.otherErr, "before the login reply: "+err.Error())
				res.mu.Unlock()
				return
			}
			m, err := signal.Decode(b)
			if err != nil || m.Type != signal.TypeLogin {
				continue
			}
			res.mu.Lock()
			defer res.mu.Unlock()
			if m.Success == nil || !*m.Success {
				res.loginNo[m.Message]++
				return
			}
			res.loggedIn++
			// Read all the host sends, as a client that keeps up does.
			_ = ws.SetReadDeadline(time.Time{})
			readers.Go(func() {
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						res.readersOut.Add(1)
						return
					}
				}
			})
			return
		}
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				one(i)
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return res
}

// TestFloodFromOneAddressLeavesTheRoomUsable: 1,100 users from one
// address flood a real `lanft signal` host with the default limits, with
// 4 KiB of meta each or with small ones; the host keeps the flood to its
// per-address limits (connections, users) and to half the room's user
// list, and alice, from another address, still shares a file to bob
// through it.
func TestFloodFromOneAddressLeavesTheRoomUsable(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot use loopback address 127.0.0.2: %v", err)
		}
		t.Skipf("cannot use loopback address 127.0.0.2 (it is on Linux): %v", err)
	}
	probe.Close()
	const flood = 1100
	head := `{"pad":"`
	big := json.RawMessage(head + strings.Repeat("x", signal.MaxMetaSize-len(head)-2) + `"}`)
	tests := []struct {
		name    string
		meta    json.RawMessage
		most    int    // flood users at most
		loginNo string // in every login refusal
	}{
		// Each weighs over its 4 KiB of meta in the 2 MiB list.
		{"4 KiB metas", big, (1 << 20) / signal.MaxMetaSize, "this room is half full and your address (127.0.0.2) holds the most of it"},
		{"small metas", json.RawMessage(`{"v":1}`), 256, "this room has 256 users from your address (127.0.0.2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := startSignal(t) // lanft signal --listen 127.0.0.1:0
			began := time.Now()
			res := floodFrom(t, url, "127.0.0.2", tt.meta, flood, 32)
			t.Logf("flood of %d from 127.0.0.2 in %v: %d logged in; logins refused %v; connections refused %v; other errors %d",
				flood, time.Since(began).Round(time.Millisecond), res.loggedIn, res.loginNo, res.connNo, len(res.otherErr))
			if len(res.otherErr) > 0 {
				t.Fatalf("%d flood connections failed otherwise than by a refusal, e.g. %q", len(res.otherErr), res.otherErr[0])
			}
			if res.loggedIn == 0 || res.loggedIn > tt.most {
				t.Fatalf("%d flood users logged in from one address, want 1 to %d", res.loggedIn, tt.most)
			}
			if len(res.loginNo) == 0 {
				t.Fatalf("no flood login was refused")
			}
			for why := range res.loginNo {
				if !strings.Contains(why, tt.loginNo) {
					t.Errorf("a flood login was refused with %q, want %q", why, tt.loginNo)
				}
			}
			for why := range res.connNo {
				if !strings.Contains(why, "too many connections from your address (127.0.0.2)") {
					t.Errorf("a flood connection was refused with %q, want the per-address limit named", why)
				}
			}
			if len(res.connNo) == 0 {
				t.Errorf("no flood connection was refused: %d from one address, want at most 512", flood)
			}

			// alice shares to bob, both from 127.0.0.1, while the flood stays.
			src := filepath.Join(t.TempDir(), "party.bin")
			lanfttest.WriteRandom(t, src, 8<<20)
			sharer := start(t, "share", "--signal", url, "--interface", "lo", "--name", "alice", "--json", src)
			sharer.WaitLine(t, `"event":"online"`, 30*time.Second)
			out := t.TempDir()
			_, stderr, code := run(t, 120*time.Second, "receive", "--signal", url, "--interface", "lo",
				"--from", "alice", "--name", "bob", "--yes", "--json", "--out", out)
			if code != 0 {
				t.Fatalf("bob's receive exited %d; stderr:\n%s", code, stderr)
			}
			sharer.WaitLine(t, `"event":"done"`, 10*time.Second)
			lanfttest.SameFile(t, src, filepath.Join(out, "party.bin"))
			if n := res.readersOut.Load(); n > 0 {
				t.Errorf("%d of the flood's %d logged-in connections were closed meanwhile; want them all still there", n, res.loggedIn)
			}
		})
	}
}
