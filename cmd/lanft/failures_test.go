package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lanft/lanft/internal/lanfttest"
)

// The failures of issue #10, each on the real binary: told fast, in one
// clear line, once, and never retried when a retry cannot help.

// shareFiles starts a share of one small file as name on url, with extra
// flags, and waits until it is online.
func shareFiles(t *testing.T, url, name string, extra ...string) (*lanfttest.Proc, string) {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "note.txt")
	if err := os.WriteFile(f, []byte("for the right receiver\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"share", "--signal", url, "--interface", "lo", "--name", name}, extra...)
	p := start(t, append(args, f)...)
	waitStderr(t, p, "sharing 1 file(s)", 30*time.Second)
	return p, f
}

// waitStderr waits until the process's stderr holds want.
func waitStderr(t *testing.T, p *lanfttest.Proc, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Stderr(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr never said %q:\n%s", want, p.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lastLine checks that stderr ends with one "lanft: " line holding want,
// said once, and returns it.
func lastLine(t *testing.T, stderr, want string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "lanft: ") || !strings.Contains(last, want) {
		t.Fatalf("last line %q is not a one-line error saying %q; stderr:\n%s", last, want, stderr)
	}
	if n := strings.Count(stderr, strings.TrimPrefix(last, "lanft: ")); n != 1 {
		t.Errorf("the error is printed %d times:\n%s", n, stderr)
	}
	return last
}

// TestToRefusesOthersOnBothSides: with --to, a receiver the sharer did not
// name is refused in words on both sides, at once; a named one receives.
func TestToRefusesOthersOnBothSides(t *testing.T) {
	url := startSignal(t)
	sharer, f := shareFiles(t, url, "alice", "--to", "bob")
	begin := time.Now()
	_, stderr, code := run(t, 30*time.Second, "receive", "--signal", url, "--interface", "lo", "--name", "eve", "--yes", "--out", t.TempDir())
	if code != 1 {
		t.Fatalf("eve: exit code %d, want 1:\n%s", code, stderr)
	}
	lastLine(t, stderr, "refused by the sharer: alice shares only with the receivers it named (--to)")
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("eve was told after %v", d)
	}
	waitStderr(t, sharer, "eve: refused: not one of the receivers named with --to", 5*time.Second)
	dir := t.TempDir()
	if _, stderr, code := run(t, 30*time.Second, "receive", "--signal", url, "--interface", "lo", "--name", "Bob", "--yes", "--out", dir); code != 0 {
		t.Fatalf("bob: exit code %d:\n%s", code, stderr)
	}
	lanfttest.SameFile(t, f, filepath.Join(dir, "note.txt"))
}

// TestAskAnsweredNo: --ask shows the receiver with its device id and code;
// "n" on the terminal declines, and the receiver says so. With --json the
// decision is a JSON line on stdin.
func TestAskAnsweredNo(t *testing.T) {
	url := startSignal(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "note.txt")
	os.WriteFile(f, []byte("ask first\n"), 0o644)
	for _, asJSON := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", asJSON), func(t *testing.T) {
			name := fmt.Sprintf("asker%v", asJSON)
			args := []string{lanftBin, "--config-dir", t.TempDir(), "share", "--signal", url, "--interface", "lo", "--name", name, "--ask", f}
			if asJSON {
				args = slices.Insert(args, len(args)-1, "--json")
			}
			sharer, stdin := lanfttest.StartWithStdin(t, args...)
			defer stdin.Close()
			if asJSON {
				sharer.WaitLine(t, `"event":"online"`, 30*time.Second)
			} else {
				waitStderr(t, sharer, "sharing 1 file(s)", 30*time.Second)
			}
			recv := start(t, "receive", "--signal", url, "--interface", "lo", "--name", "dave", "--from", name, "--yes", "--out", t.TempDir())
			var code string
			if asJSON {
				l := sharer.WaitLine(t, `"event":"ask"`, 30*time.Second)
				var e struct{ Peer, Device, Code string }
				if err := json.Unmarshal([]byte(l.Text), &e); err != nil || e.Peer != "dave" || e.Device == "" || e.Code == "" {
					t.Fatalf("ask event %s (%v)", l.Text, err)
				}
				code = e.Code
				fmt.Fprintln(stdin, `{"peer":"dave","accept":false}`)
			} else {
				waitStderr(t, sharer, "Send to dave? [y/N]", 30*time.Second)
				s := sharer.Stderr()
				i := strings.Index(s, "verification code ")
				code = s[i+len("verification code ") : i+len("verification code ")+7]
				fmt.Fprintln(stdin, "n")
			}
			if c := recv.ExitCode(); c != 1 {
				t.Fatalf("receiver exit code %d, want 1:\n%s", c, recv.Stderr())
			}
			// The receiver showed the same code while it waited.
			if !strings.Contains(recv.Stderr(), "waiting for "+name+" to accept; verification code "+code) {
				t.Errorf("the receiver did not show code %s while waiting:\n%s", code, recv.Stderr())
			}
			lastLine(t, recv.Stderr(), "declined to send to dave")
		})
	}
}

// TestReadOnlyTargetFailsFast: an unprivileged receiver (root writes
// anywhere) whose --out it cannot write fails within 3 s with one line and
// no retry, before anything is accepted; one whose folder is writable but
// holds a read-only subfolder the share needs fails as fast, after
// accepting, also without a retry.
func TestReadOnlyTargetFailsFast(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (to run the receiver as nobody); CI runs as root")
		}
		t.Skip("needs root to run the receiver as an unprivileged user (not root and not CI=true)")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	url := startSignal(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "docs"), 0o755)
	os.WriteFile(filepath.Join(src, "docs", "a.txt"), []byte("abc"), 0o644)
	start(t, "share", "--signal", url, "--interface", "lo", "--name", "alice", "--json", filepath.Join(src, "docs")).
		WaitLine(t, `"event":"online"`, 30*time.Second)

	// Folders nobody can reach: the binary's, a config folder, the targets.
	os.Chmod(filepath.Dir(lanftBin), 0o755)
	base, err := os.MkdirTemp("", "lanft-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	cfgDir := mk("config", 0o777)
	readOnly := mk("readonly", 0o555)
	writable := mk("writable", 0o777)
	mk("writable/docs", 0o555) // the share's folder, not writable by nobody

	tests := []struct {
		name, out, want string
	}{
		{"read-only --out", readOnly, "receive: cannot write into " + readOnly + ": permission denied"},
		{"read-only subfolder", writable, "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now()
			_, stderr, code := lanfttest.Run(t, 30*time.Second, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
				lanftBin, "--config-dir", cfgDir, "receive", "--signal", url, "--interface", "lo", "--yes", "--out", tt.out)
			took := time.Since(begin)
			if code != 1 {
				t.Fatalf("exit code %d, want 1:\n%s", code, stderr)
			}
			lastLine(t, stderr, tt.want)
			if took > 3*time.Second {
				t.Errorf("took %v to fail, want under 3 s", took)
			}
			for _, retry := range []string{"trying again", "resuming"} {
				if strings.Contains(stderr, retry) {
					t.Errorf("a local failure was retried:\n%s", stderr)
				}
			}
			t.Logf("failed after %v: %s", took.Round(10*time.Millisecond), strings.TrimSpace(stderr[strings.LastIndex(strings.TrimSpace(stderr), "\n")+1:]))
		})
	}
}

// TestCtrlCExits130AndResumes: Ctrl-C during a receive exits 130, keeps the
// .part file and says how to resume; running again fetches only the rest.
// Every --json event of both sides carries every field of the schema.
func TestCtrlCExits130AndResumes(t *testing.T) {
	url := startSignal(t)
	src := t.TempDir()
	big := filepath.Join(src, "big.bin")
	lanfttest.WriteRandom(t, big, resumeSize)
	sharer := start(t, "share", "--signal", url, "--interface", "lo", "--name", "alice", "--json", big)
	sharer.WaitLine(t, `"event":"online"`, 60*time.Second)
	dir := t.TempDir()
	cfg := t.TempDir()
	args := []string{lanftBin, "--config-dir", cfg, "receive", "--signal", url, "--interface", "lo", "--yes", "--json", "--out", dir}
	recv := lanfttest.Start(t, args...)
	waitProgress(t, recv, 0.2)
	recv.Interrupt()
	if code := recv.ExitCode(); code != 130 {
		t.Fatalf("exit code %d after Ctrl-C, want 130:\n%s", code, recv.Stderr())
	}
	lastLine(t, recv.Stderr(), "interrupted; run the same command again to resume")
	if fi, err := os.Stat(filepath.Join(dir, "big.bin.part")); err != nil || fi.Size() == 0 {
		t.Fatalf("no .part file to resume from: %v", err)
	}
	stdout, stderr, code := lanfttest.Run(t, 2*time.Minute, args...)
	if code != 0 {
		t.Fatalf("second run: exit %d:\n%s", code, stderr)
	}
	if e := lastEvent(t, stdout); e.Skipped < resumeSize/10 || e.Received+e.Skipped != resumeSize {
		t.Fatalf("resumed with %d bytes kept and %d fetched, want at least a tenth kept and %d in all", e.Skipped, e.Received, resumeSize)
	}
	lanfttest.SameFile(t, big, filepath.Join(dir, "big.bin"))

	// The schema: every field on every event, whichever side.
	fields := []string{"event", "peer", "host", "file", "done", "total", "transferred", "path", "device", "code", "message"}
	sharer.Interrupt()
	var lines []string
	for l := range sharerLines(sharer) {
		lines = append(lines, l)
	}
	// The sharer's side: progress events, and the second connection's done
	// event counts only what it moved, not what the receiver kept.
	var sharerProgress bool
	var sharerDone []map[string]any
	for _, l := range lines {
		var m map[string]any
		json.Unmarshal([]byte(l), &m)
		switch m["event"] {
		case "progress":
			sharerProgress = true
		case "done":
			sharerDone = append(sharerDone, m)
		}
		for _, internal := range []string{"chunk", "sctp", "dtls", "ice:"} {
			if strings.Contains(strings.ToLower(l), internal) {
				t.Errorf("library internals in the sharer's output: %s", l)
			}
		}
	}
	if !sharerProgress || len(sharerDone) != 1 {
		t.Fatalf("the sharer printed progress=%v and %d done events, want progress and one done", sharerProgress, len(sharerDone))
	}
	if moved := int64(sharerDone[0]["transferred"].(float64)); moved >= resumeSize-resumeSize/10 {
		t.Errorf("the sharer says it sent %d bytes after a resume, of %d: it counts what the receiver already had", moved, resumeSize)
	}
	lines = append(lines, strings.Split(strings.TrimSpace(stdout), "\n")...)
	kinds := map[string]bool{}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		for _, f := range fields {
			if _, ok := m[f]; !ok {
				t.Errorf("event %s lacks %q: %s", m["event"], f, l)
			}
		}
		kinds[m["event"].(string)] = true
	}
	for _, k := range []string{"online", "peer", "progress", "done", "manifest", "error"} {
		if !kinds[k] {
			t.Errorf("no %q event among %v", k, kinds)
		}
	}
}

// sharerLines drains the stdout lines of an exited process.
func sharerLines(p *lanfttest.Proc) <-chan string {
	out := make(chan string)
	go func() {
		defer close(out)
		for {
			l, err := p.Next("", 100*time.Millisecond)
			if err != nil {
				return
			}
			out <- l.Text
		}
	}()
	return out
}

// TestHostileHostCLI: a signaling host that rewrites offers (the first step
// of putting itself in the middle). The sharer refuses; its signed refusal
// reaches the receiver, which fails at once saying the host is interfering;
// when the host swallows the refusal too, the receiver gives up within
// 10 s saying the host may be interfering. No retry, nothing written.
func TestHostileHostCLI(t *testing.T) {
	real := startSignal(t)
	proxy, dropLeaves := tamperingHost(t, real)
	sharer, _ := shareFiles(t, proxy, "alice")
	tests := []struct {
		name string
		drop bool
		want string
	}{
		{"refusal relayed", false, "alice refused our offer because it arrived altered; the signaling host is interfering"},
		{"refusal dropped", true, "no verified answer from alice within 10s: it may have refused this connection, or the signaling host may be interfering"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dropLeaves.Store(tt.drop)
			dir := t.TempDir()
			begin := time.Now()
			_, stderr, code := run(t, 60*time.Second, "receive", "--signal", proxy, "--interface", "lo", "--name", "bob", "--yes", "--out", dir)
			took := time.Since(begin)
			if code != 1 {
				t.Fatalf("exit code %d, want 1:\n%s", code, stderr)
			}
			lastLine(t, stderr, tt.want)
			t.Logf("the receiver gave up after %v; its output:\n%s", took.Round(10*time.Millisecond), stderr)
			if took > 12*time.Second {
				t.Errorf("took %v, want the receiver to give up within 10 s", took)
			}
			if strings.Contains(stderr, "trying again") {
				t.Errorf("a verdict was retried:\n%s", stderr)
			}
			emptyFolder(t, dir)
		})
	}
	waitStderr(t, sharer, "bob: refused: the peer could not be verified: the offer from bob does not match its signature", 5*time.Second)
	t.Logf("the sharer's output:\n%s", sharer.Stderr())
}

func emptyFolder(t *testing.T, dir string) {
	t.Helper()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("%s holds %d entries, want nothing written", dir, len(entries))
	}
}

// tamperingHost is a WebSocket proxy in front of a real signaling host
// that rewrites the DTLS fingerprint of every offer and, when told,
// swallows leave messages. It returns its URL.
func tamperingHost(t *testing.T, upstream string) (string, *atomic.Bool) {
	t.Helper()
	var drop atomic.Bool
	var up websocket.Upgrader
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer client.Close()
		server, _, err := websocket.DefaultDialer.Dial(upstream, nil)
		if err != nil {
			return
		}
		defer server.Close()
		wg.Go(func() {
			for {
				mt, b, err := server.ReadMessage()
				if err != nil {
					client.Close()
					return
				}
				client.WriteMessage(mt, b)
			}
		})
		for {
			mt, b, err := client.ReadMessage()
			if err != nil {
				server.Close()
				return
			}
			var m map[string]any
			if json.Unmarshal(b, &m) == nil {
				switch m["type"] {
				case "offer":
					if o, ok := m["offer"].(map[string]any); ok {
						if sdp, ok := o["sdp"].(string); ok {
							o["sdp"] = alterFingerprint(sdp)
							b, _ = json.Marshal(m)
						}
					}
				case "leave":
					if drop.Load() {
						continue
					}
				}
			}
			server.WriteMessage(mt, b)
		}
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); wg.Wait() })
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", &drop
}

// alterFingerprint changes the last hex digit of the SDP's fingerprint.
func alterFingerprint(sdp string) string {
	i := strings.Index(sdp, "a=fingerprint:sha-256 ")
	if i < 0 {
		return sdp
	}
	end := i + strings.Index(sdp[i:], "\r\n")
	d := byte('0')
	if sdp[end-1] == '0' {
		d = '1'
	}
	return sdp[:end-1] + string(d) + sdp[end:]
}
