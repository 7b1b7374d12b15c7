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
	dir, err := os.MkdirTemp("", "lanft-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lanftBin, err = lanfttest.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
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

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"server unreachable", []string{"receive", "--signal", "ws://127.0.0.1:1/ws", "--yes"}, "connect to ws://127.0.0.1:1/ws"},
		{"name taken", []string{"share", "--signal", url, "--name", "taken", f}, `name "taken" is taken`},
		{"no such sharer", []string{"receive", "--signal", url, "--interface", "lo", "--from", "nobody", "--wait", "2s", "--yes"}, `"nobody" is not sharing`},
		{"nothing to share", []string{"share", "--signal", url}, "name at least one file"},
		{"missing file", []string{"share", "--signal", url, "--interface", "lo", filepath.Join(t.TempDir(), "nope")}, "nope"},
		{"declined without a terminal", []string{"receive", "--signal", url, "--interface", "lo", "--out", t.TempDir()}, "pass --yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, 60*time.Second, tt.args...)
			if code == 0 {
				t.Fatalf("exit code 0, want a failure; stderr:\n%s", stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "lanft: ") || !strings.Contains(last, tt.want) {
				t.Fatalf("last line of stderr %q is not a one-line error saying %q; stderr:\n%s", last, tt.want, stderr)
			}
		})
	}
}
