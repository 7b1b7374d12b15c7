package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
)

// lanftBin is the binary built once for the end-to-end tests.
var lanftBin string

func TestMain(m *testing.M) {
	var err error
	if lanftBin, err = lanfttest.BinaryPath(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(lanfttest.Main(m))
}

// start runs lanft with its own config folder (device key, pins).
func start(t *testing.T, args ...string) *lanfttest.Proc {
	return lanfttest.Start(t, append([]string{lanftBin, "--config-dir", t.TempDir()}, args...)...)
}

func run(t *testing.T, timeout time.Duration, args ...string) (string, string, int) {
	return lanfttest.Run(t, timeout, append([]string{lanftBin, "--config-dir", t.TempDir()}, args...)...)
}

func startSignal(t *testing.T) string {
	t.Helper()
	p := start(t, "signal", "--listen", "127.0.0.1:0")
	return strings.TrimSpace(p.WaitLine(t, "ws://", 10*time.Second).Text)
}

// TestShareReceiveTwoReceivers is the core end to end: three processes on
// loopback; a 64 MiB file and a small one reach two receivers at once.
func TestShareReceiveTwoReceivers(t *testing.T) {
	url := startSignal(t)
	src := t.TempDir()
	big, small := filepath.Join(src, "big.bin"), filepath.Join(src, "note.txt")
	lanfttest.WriteRandom(t, big, 64<<20)
	if err := os.WriteFile(small, []byte("hello from lanft\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sharer := start(t, "share", "--signal", url, "--interface", "lo", "--name", "sharer", "--json", big, small)
	sharer.WaitLine(t, `"event":"online"`, 30*time.Second)

	outs := []string{t.TempDir(), t.TempDir()}
	var wg sync.WaitGroup
	stdouts := make([]string, len(outs))
	stderrs := make([]string, len(outs))
	codes := make([]int, len(outs))
	for i, out := range outs {
		wg.Go(func() {
			stdouts[i], stderrs[i], codes[i] = run(t, 120*time.Second, "receive", "--signal", url, "--interface", "lo",
				"--from", "sharer", "--name", fmt.Sprintf("receiver-%d", i), "--yes", "--json", "--out", out)
		})
	}
	wg.Wait()
	// The sharer saw both transfers complete (it read each receiver's OK).
	for range outs {
		sharer.WaitLine(t, `"event":"done"`, 10*time.Second)
	}
	for i, out := range outs {
		if codes[i] != 0 {
			t.Fatalf("receiver %d exited %d; stderr:\n%s", i, codes[i], stderrs[i])
		}
		lanfttest.SameFile(t, big, filepath.Join(out, "big.bin"))
		lanfttest.SameFile(t, small, filepath.Join(out, "note.txt"))
		lanfttest.NoPartFiles(t, out)
		var done struct {
			Event string   `json:"event"`
			Files []string `json:"files"`
		}
		lines := strings.Split(strings.TrimSpace(stdouts[i]), "\n")
		last := lines[len(lines)-1]
		if err := json.Unmarshal([]byte(last), &done); err != nil || done.Event != "done" || len(done.Files) != 2 {
			t.Fatalf("receiver %d: last JSON line %q, want a done event with 2 files", i, last)
		}
	}
}

// TestPeersListsTheShare checks that `lanft peers` shows a share and its size.
func TestPeersListsTheShare(t *testing.T) {
	url := startSignal(t)
	f := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(f, []byte("abc"), 0o644)
	sharer := start(t, "share", "--signal", url, "--interface", "lo", "--name", "box", "--json", f)
	sharer.WaitLine(t, `"event":"online"`, 30*time.Second)
	stdout, stderr, code := run(t, 30*time.Second, "peers", "--signal", url, "--interface", "lo")
	if code != 0 {
		t.Fatalf("peers exited %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "box") || !strings.Contains(stdout, "a.txt") || !strings.Contains(stdout, "share") {
		t.Fatalf("peers output lacks the share:\n%s", stdout)
	}
}

// TestClearErrors checks the one-line errors and exit codes of common failures.
func TestClearErrors(t *testing.T) {
	url := startSignal(t)
	f := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(f, []byte("abc"), 0o644)
	sharer := start(t, "share", "--signal", url, "--interface", "lo", "--name", "taken", "--json", f)
	sharer.WaitLine(t, `"event":"online"`, 30*time.Second)

	notFolder := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notFolder, nil, 0o644)
	tests := []struct {
		name string
		args []string
		want string
		code int    // 0: any failure
		not  string // must not be printed
	}{
		{"server unreachable", []string{"receive", "--signal", "ws://127.0.0.1:1/ws", "--yes"}, "cannot reach the signaling host ws://127.0.0.1:1/ws: connection refused", 1, ""},
		{"not a signaling endpoint", []string{"receive", "--signal", strings.TrimSuffix(url, "/ws") + "/nope", "--yes"}, "not a lanft signaling endpoint (lanft's is ws://HOST:PORT/ws)", 1, ""},
		{"name taken", []string{"share", "--signal", url, "--name", "TAKEN", f}, `"TAKEN" is too close to "taken", who is online; pick another with --name`, 1, "sharing"},
		{"no such sharer", []string{"receive", "--signal", url, "--interface", "lo", "--from", "nobody", "--wait", "2s", "--yes"}, `nobody named "nobody" came online within 2s (online shares: taken)`, 1, "doctor"},
		{"nothing to share", []string{"share", "--signal", url}, "name at least one file", 2, ""},
		{"missing file", []string{"share", "--signal", url, "--interface", "lo", filepath.Join(t.TempDir(), "nope")}, "nope", 1, ""},
		{"declined without a terminal", []string{"receive", "--signal", url, "--interface", "lo", "--out", t.TempDir()}, "pass --yes", 1, ""},
		{"no such interface", []string{"receive", "--signal", url, "--interface", "eth9"}, "--interface eth9: this machine has no such network interface (it has: lo", 2, ""},
		{"out is a file", []string{"receive", "--signal", url, "--out", notFolder}, "is not a folder", 2, ""},
		{"global flag after the command", []string{"receive", "--log-level", "loud", "--signal", url}, `bad --log-level "loud"`, 2, ""},
		{"bad signal scheme", []string{"receive", "--signal", "ftp://x/ws"}, "the scheme must be ws:// or wss://", 2, ""},
		{"bad path mode", []string{"receive", "--signal", url, "--path", "tcp"}, `--path "tcp" (or LANFT_PATH): want auto, datachannel or relay`, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, 60*time.Second, tt.args...)
			if code == 0 || tt.code != 0 && code != tt.code {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "lanft: ") || !strings.Contains(last, tt.want) {
				t.Fatalf("last line of stderr %q is not a one-line error saying %q; stderr:\n%s", last, tt.want, stderr)
			}
			if n := strings.Count(stderr, strings.TrimPrefix(last, "lanft: ")); n != 1 {
				t.Errorf("the error is printed %d times; stderr:\n%s", n, stderr)
			}
			if tt.not != "" && strings.Contains(stderr, tt.not) {
				t.Errorf("stderr says %q:\n%s", tt.not, stderr)
			}
			if strings.Contains(stderr, "level=") {
				t.Errorf("log records in the human output:\n%s", stderr)
			}
		})
	}
}

// TestSignalURLs: `lanft signal` on an unspecified address prints a URL per
// address others can use (never [::] or 0.0.0.0), and a --signal URL without
// a path or with http:// works.
func TestSignalURLs(t *testing.T) {
	p := start(t, "signal", "--listen", ":0")
	first := p.WaitLine(t, "ws://", 10*time.Second).Text
	if strings.Contains(first, "[::]") || strings.Contains(first, "0.0.0.0") {
		t.Fatalf("signal printed an unusable URL %q", first)
	}
	var loop string
	for !strings.Contains(first, "127.0.0.1") {
		first = p.WaitLine(t, "ws://", 10*time.Second).Text
	}
	loop = strings.TrimSpace(first)
	base := strings.TrimSuffix(loop, "/ws")
	f := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(f, []byte("abc"), 0o644)
	start(t, "share", "--signal", strings.Replace(base, "ws://", "http://", 1), "--interface", "lo", "--name", "box", "--json", f).
		WaitLine(t, `"event":"online"`, 30*time.Second)
	dir := t.TempDir()
	_, stderr, code := run(t, 60*time.Second, "receive", "--signal", strings.TrimPrefix(base, "ws://"), "--interface", "lo", "--yes", "--out", dir)
	if code != 0 {
		t.Fatalf("receive with a bare HOST:PORT exited %d:\n%s", code, stderr)
	}
	lanfttest.SameFile(t, f, filepath.Join(dir, "a.txt"))
}
