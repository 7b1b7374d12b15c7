package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
)

const resumeSize = 256 << 20

// receiveEvent is one --json line of lanft receive.
type receiveEvent struct {
	Event    string `json:"event"`
	Done     int64  `json:"done"`
	Total    int64  `json:"total"`
	Received int64  `json:"transferred"`
	Skipped  int64  `json:"skipped"`
}

// waitProgress waits until the receiver has reported at least frac of the total.
func waitProgress(t *testing.T, p *lanfttest.Proc, frac float64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		l := p.WaitLine(t, `"event":"progress"`, time.Until(deadline))
		var e receiveEvent
		if json.Unmarshal([]byte(l.Text), &e) == nil && e.Total > 0 && float64(e.Done) >= frac*float64(e.Total) {
			return
		}
	}
	t.Fatalf("no progress past %.0f%%", frac*100)
}

func lastEvent(t *testing.T, stdout string) receiveEvent {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var e receiveEvent
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil || e.Event != "done" {
		t.Fatalf("last line %q is not a done event", lines[len(lines)-1])
	}
	return e
}

// killAtHalfAndRerun runs the receive args, kills it once half of the
// file has arrived, checks that file holds only a .part, runs the receive
// again and returns its stdout. onStart, if set, sees the first run.
func killAtHalfAndRerun(t *testing.T, args []string, file string, onStart func(*lanfttest.Proc)) string {
	t.Helper()
	first := lanfttest.Start(t, args...)
	if onStart != nil {
		onStart(first)
	}
	waitProgress(t, first, 0.5)
	first.Kill()
	if _, err := os.Stat(file + ".part"); err != nil {
		t.Fatalf("no .part after the kill: %v", err)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a partial file was presented as complete")
	}
	stdout, stderr, code := lanfttest.Run(t, 3*time.Minute, args...)
	if code != 0 {
		t.Fatalf("second receive exited %d: %s", code, stderr)
	}
	return stdout
}

// checkResumed asserts the second run fetched only the missing part: at
// most the half not received plus 10% of the file.
func checkResumed(t *testing.T, e receiveEvent) {
	t.Helper()
	if e.Received+e.Skipped != resumeSize {
		t.Fatalf("received %d + skipped %d != %d", e.Received, e.Skipped, resumeSize)
	}
	if limit := int64(resumeSize/2 + resumeSize/10); e.Received > limit {
		t.Fatalf("re-received %d bytes after resuming, want at most %d (the missing half plus 10%%)", e.Received, limit)
	}
	t.Logf("resumed: %d MiB kept from the first run, %d MiB fetched", e.Skipped>>20, e.Received>>20)
}

func TestResumeAfterReceiverKilled(t *testing.T) {
	url := startSignal(t)
	src := filepath.Join(t.TempDir(), "large.bin")
	lanfttest.WriteRandom(t, src, resumeSize)
	share := start(t, "share", "--signal", url, "--interface", "lo", "--name", "src", "--json", src)
	share.WaitLine(t, `"event":"online"`, 60*time.Second)

	out, cfg := t.TempDir(), t.TempDir()
	args := []string{lanftBin, "--config-dir", cfg, "receive", "--signal", url, "--interface", "lo", "--from", "src", "--yes", "--json", "--out", out}
	stdout := killAtHalfAndRerun(t, args, filepath.Join(out, "large.bin"), nil)
	checkResumed(t, lastEvent(t, stdout))
	lanfttest.SameFile(t, src, filepath.Join(out, "large.bin"))
	lanfttest.NoPartFiles(t, out)
}

func TestResumeAfterSenderKilledAndRestarted(t *testing.T) {
	url := startSignal(t)
	src := filepath.Join(t.TempDir(), "large.bin")
	lanfttest.WriteRandom(t, src, resumeSize)
	shareCfg := t.TempDir() // the restarted sharer keeps its device key
	shareArgs := []string{lanftBin, "--config-dir", shareCfg, "share", "--signal", url, "--interface", "lo", "--name", "src", "--json", src}
	share := lanfttest.Start(t, shareArgs...)
	share.WaitLine(t, `"event":"online"`, 60*time.Second)

	out := t.TempDir()
	recv := start(t, "receive", "--signal", url, "--interface", "lo", "--from", "src", "--yes", "--json", "--out", out)
	waitProgress(t, recv, 0.5)
	share.Kill()
	// The receiver keeps trying while the sharer is away; it comes back.
	share = lanfttest.Start(t, shareArgs...)
	share.WaitLine(t, `"event":"online"`, 60*time.Second)

	done := recv.WaitLine(t, `"event":"done"`, 3*time.Minute)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	var e receiveEvent
	if err := json.Unmarshal([]byte(done.Text), &e); err != nil {
		t.Fatal(err)
	}
	checkResumed(t, e)
	lanfttest.SameFile(t, src, filepath.Join(out, "large.bin"))
	lanfttest.NoPartFiles(t, out)
}
