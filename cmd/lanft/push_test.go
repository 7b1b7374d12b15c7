package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// These tests run `lanft up` on one namespace host and `lanft send` on
// others (root; see internal/netns), finding each other over mDNS.

// device is one machine's lanft: a host of the LAN and a config folder
// that keeps its key, pins and history across runs.
type device struct {
	lan  *netns.LAN
	host int
	dir  string
	name string
}

func newDevice(t *testing.T, lan *netns.LAN, host int, name string) *device {
	return &device{lan: lan, host: host, dir: t.TempDir(), name: name}
}

func (d *device) argv(args ...string) []string {
	argv := []string{"ip", "netns", "exec", d.lan.Namespace(d.host), lanftBin, "--config-dir", d.dir, args[0],
		"--interface", d.lan.Iface(d.host), "--name", d.name}
	return append(argv, args[1:]...)
}

// up starts `lanft up --json` with a pipe for its decisions.
func (d *device) up(t *testing.T, out string, args ...string) (*lanfttest.Proc, io.WriteCloser) {
	p, stdin := lanfttest.StartWithStdin(t, d.argv(append([]string{"up", "--json", "--out", out}, args...)...)...)
	p.WaitLine(t, `"event":"online"`, 30*time.Second)
	return p, stdin
}

// send starts `lanft send --json --to to ...`.
func (d *device) send(t *testing.T, to string, args ...string) *lanfttest.Proc {
	return lanfttest.Start(t, d.argv(append([]string{"send", "--json", "--wait", "30s", "--to", to}, args...)...)...)
}

// local runs a command of d that stays off the network (trust, history).
func (d *device) local(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, code := lanfttest.Run(t, 20*time.Second, append([]string{lanftBin, "--config-dir", d.dir}, args...)...)
	if code != 0 {
		t.Fatalf("lanft %s exited %d: %s", strings.Join(args, " "), code, stderr)
	}
	return stdout + stderr
}

// decide answers up's next question, which must be about peer.
func decide(t *testing.T, up *lanfttest.Proc, stdin io.Writer, peer string, accept bool) {
	t.Helper()
	ask := up.WaitLine(t, `"event":"ask"`, 60*time.Second)
	if !strings.Contains(ask.Text, fmt.Sprintf(`"peer":%q`, peer)) {
		t.Fatalf("asked about another peer than %s: %s", peer, ask.Text)
	}
	fmt.Fprintf(stdin, `{"peer":%q,"accept":%v}`+"\n", peer, accept)
}

func exitCode(t *testing.T, p *lanfttest.Proc, want int) {
	t.Helper()
	if got := p.ExitCode(); got != want {
		t.Fatalf("send exited %d, want %d; stderr:\n%s", got, want, p.Stderr())
	}
}

func TestPushFilesFolderAndText(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	target, sender := newDevice(t, lan, 1, "desk"), newDevice(t, lan, 2, "laptop")
	out := t.TempDir()
	up, stdin := target.up(t, out)

	src := t.TempDir()
	lanfttest.WriteRandom(t, filepath.Join(src, "one.bin"), 3<<20)
	os.MkdirAll(filepath.Join(src, "album", "deep"), 0o755)
	lanfttest.WriteRandom(t, filepath.Join(src, "album", "a.bin"), 2<<20)
	lanfttest.WriteRandom(t, filepath.Join(src, "album", "deep", "b.bin"), 1<<20)
	s := sender.send(t, "DESK", filepath.Join(src, "one.bin"), filepath.Join(src, "album"))
	decide(t, up, stdin, "laptop", true)
	up.WaitLine(t, `"event":"done"`, 60*time.Second)
	exitCode(t, s, 0)
	for _, f := range []string{"one.bin", "album/a.bin", "album/deep/b.bin"} {
		lanfttest.SameFile(t, filepath.Join(src, f), filepath.Join(out, f))
	}
	lanfttest.NoPartFiles(t, out)

	text := "the code is 4711\nsecond line: ünïcödé"
	s = sender.send(t, "desk", "--text", text)
	decide(t, up, stdin, "laptop", true)
	got := up.WaitLine(t, `"event":"text"`, 30*time.Second)
	var e struct{ Message string }
	if err := json.Unmarshal([]byte(got.Text), &e); err != nil || e.Message != text {
		t.Fatalf("up showed the text %q (%v), want %q", e.Message, err, text)
	}
	exitCode(t, s, 0)

	hist := target.local(t, "history")
	for _, want := range []string{"the code is 4711", "second line: ünïcödé", "album/deep/b.bin", "received from laptop", fileSHA(t, filepath.Join(src, "one.bin"))} {
		if !strings.Contains(hist, want) {
			t.Errorf("up's history lacks %q:\n%s", want, hist)
		}
	}
	if sent := sender.local(t, "history"); !strings.Contains(sent, "sent to desk") || !strings.Contains(sent, "the code is 4711") {
		t.Errorf("the sender's history lacks the sends:\n%s", sent)
	}
}

func TestPushDeclineAndTimeout(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	target, sender := newDevice(t, lan, 1, "desk"), newDevice(t, lan, 2, "laptop")
	out := t.TempDir()
	up, stdin := target.up(t, out, "--ask-timeout", "3s")
	f := filepath.Join(t.TempDir(), "no.bin")
	lanfttest.WriteRandom(t, f, 1<<20)

	s := sender.send(t, "desk", f)
	decide(t, up, stdin, "laptop", false)
	refused := up.WaitLine(t, `"event":"refused"`, 30*time.Second)
	if !strings.Contains(refused.Text, `"message":"declined"`) {
		t.Fatalf("up's refusal: %s", refused.Text)
	}
	exitCode(t, s, exitDeclined)
	saidOnce(t, s.Stderr(), "declined")

	s = sender.send(t, "desk", f)
	up.WaitLine(t, `"event":"ask"`, 60*time.Second)
	refused = up.WaitLine(t, `"event":"refused"`, 30*time.Second)
	if !strings.Contains(refused.Text, `"message":"timeout"`) {
		t.Fatalf("up's refusal after no answer: %s", refused.Text)
	}
	exitCode(t, s, exitTimedOut)
	saidOnce(t, s.Stderr(), "nobody answered")
	if n := countEvents(t, up, `"event":"refused"`); n != 0 {
		t.Fatalf("up said %d more refusals", n)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("declined sends wrote %d entries into the folder", len(entries))
	}
}

func TestPushTrustedDevice(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	target, sender := newDevice(t, lan, 1, "desk"), newDevice(t, lan, 2, "laptop")
	out := t.TempDir()
	up, stdin := target.up(t, out)
	dir := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(dir, name)
		lanfttest.WriteRandom(t, p, 1<<20+int64(len(name))) // the size seeds the content
		return p
	}

	// First contact: asked, accepted, pinned; then trusted.
	first := file("first.bin")
	s := sender.send(t, "desk", first)
	decide(t, up, stdin, "laptop", true)
	if ask := s.WaitLine(t, `"event":"ask"`, 10*time.Second); !strings.Contains(ask.Text, "it must match on desk's screen") {
		t.Errorf("at first contact the sender does not ask for the code to be compared: %s", ask.Text)
	}
	exitCode(t, s, 0)
	if list := target.local(t, "devices"); !strings.Contains(list, "laptop") {
		t.Fatalf("devices lacks the sender:\n%s", list)
	}
	target.local(t, "trust", "Laptop")

	// Trusted: accepted at once, without a question.
	second := file("second.bin")
	s = sender.send(t, "desk", second)
	push := up.WaitLine(t, `"event":"push"`, 60*time.Second)
	if !strings.Contains(push.Text, "trusted") {
		t.Fatalf("push event: %s", push.Text)
	}
	// desk shows no code for a trusted device: the sender does not say
	// that one must match on desk's screen.
	if ask := s.WaitLine(t, `"event":"ask"`, 10*time.Second); strings.Contains(ask.Text, "must match on desk's screen") || !strings.Contains(ask.Text, "if desk shows one") {
		t.Errorf("the sender to a device that knows it: %s", ask.Text)
	}
	exitCode(t, s, 0)
	lanfttest.SameFile(t, second, filepath.Join(out, "second.bin"))

	// Untrusted again: asked again.
	target.local(t, "untrust", "laptop")
	third := file("third.bin")
	s = sender.send(t, "desk", third)
	decide(t, up, stdin, "laptop", true)
	exitCode(t, s, 0)
	lanfttest.SameFile(t, third, filepath.Join(out, "third.bin"))

	// A new key under the trusted name: refused, nothing written.
	target.local(t, "trust", "laptop")
	impostor := newDevice(t, lan, 2, "laptop")
	fake := file("fake.bin")
	s = impostor.send(t, "desk", fake)
	up.WaitLine(t, `"event":"refused"`, 60*time.Second)
	exitCode(t, s, exitRefused)
	if _, err := os.Stat(filepath.Join(out, "fake.bin")); !os.IsNotExist(err) {
		t.Fatalf("the impostor's file was written: %v", err)
	}
	lanfttest.NoPartFiles(t, out)
	if !strings.Contains(s.Stderr(), "another device") {
		t.Errorf("the impostor was not told why: %s", s.Stderr())
	}
}

func TestPushUnknownNameToTrust(t *testing.T) {
	stdout, stderr, code := run(t, 20*time.Second, "trust", "nobody")
	if code != 2 || !strings.Contains(stderr, `"nobody"`) || !strings.Contains(stderr, "first contact") {
		t.Fatalf("trust of an unknown name exited %d: %s%s", code, stdout, stderr)
	}
}

func TestPushFiveSendersAtOnce(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	target := newDevice(t, lan, 1, "desk")
	out := t.TempDir()
	up, stdin := target.up(t, out)
	const n = 5
	want := map[string]bool{}
	procs := make([]*lanfttest.Proc, n)
	for i := range n {
		// Each sends a file of the same name: none may overwrite another.
		f := filepath.Join(t.TempDir(), "report.bin")
		lanfttest.WriteRandom(t, f, 2<<20+int64(i)*4096) // the size seeds the content
		want[fileSHA(t, f)] = true
		procs[i] = newDevice(t, lan, 2+i%2, fmt.Sprintf("sender-%d", i)).send(t, "desk", f)
	}
	var mu sync.Mutex
	for range n {
		ask := up.WaitLine(t, `"event":"ask"`, 90*time.Second)
		var e struct{ Peer string }
		if err := json.Unmarshal([]byte(ask.Text), &e); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		fmt.Fprintf(stdin, `{"peer":%q,"accept":true}`+"\n", e.Peer)
		mu.Unlock()
	}
	for _, p := range procs {
		exitCode(t, p, 0)
	}
	got := map[string]bool{}
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got[fileSHA(t, p)] = true
			t.Logf("received %s", strings.TrimPrefix(p, out))
		}
		return nil
	})
	if len(got) != n || !maps.Equal(got, want) {
		t.Fatalf("got %d distinct files in %s, want the %d sent", len(got), out, n)
	}
	lanfttest.NoPartFiles(t, out)
}

// saidOnce fails unless exactly one line of s contains word.
func saidOnce(t *testing.T, s, word string) {
	t.Helper()
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%q said on %d lines, want 1:\n%s", word, n, s)
	}
}

// countEvents counts the lines with want that p prints within a second.
func countEvents(t *testing.T, p *lanfttest.Proc, want string) int {
	n := 0
	for {
		if _, err := p.Next(want, time.Second); err != nil {
			return n
		}
		n++
	}
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestPushUpSurvivesHostFailover: the elected host dies while up is
// online; up logs in to the newly elected host and still takes a send.
func TestPushUpSurvivesHostFailover(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	tiny := filepath.Join(t.TempDir(), "tiny.txt")
	os.WriteFile(tiny, []byte("host"), 0o644)
	host := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "first", "--json", tiny)
	host.WaitLine(t, `"event":"online"`, 20*time.Second)

	target := newDevice(t, lan, 2, "desk")
	out := t.TempDir()
	up, stdin := target.up(t, out)
	host.Kill()
	up.WaitLine(t, `"event":"online"`, 30*time.Second)

	f := filepath.Join(t.TempDir(), "after.bin")
	lanfttest.WriteRandom(t, f, 1<<20)
	s := newDevice(t, lan, 3, "laptop").send(t, "desk", f)
	decide(t, up, stdin, "laptop", true)
	exitCode(t, s, 0)
	lanfttest.SameFile(t, f, filepath.Join(out, "after.bin"))
}

// TestPushDiskFull: up's folder fills while a send arrives: both sides
// say so, and the .part is kept.
func TestPushDiskFull(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	out := t.TempDir()
	if err := unix.Mount("tmpfs", out, "tmpfs", 0, "size=32m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(out, unix.MNT_DETACH) })
	up, stdin := newDevice(t, lan, 1, "desk").up(t, out, "--path", "datachannel")
	f := filepath.Join(t.TempDir(), "movie.bin")
	lanfttest.WriteRandom(t, f, 28<<20)
	s := newDevice(t, lan, 2, "laptop").send(t, "desk", "--path", "datachannel", f)
	decide(t, up, stdin, "laptop", true)
	up.WaitLine(t, `"event":"progress"`, 60*time.Second)
	fill(t, filepath.Join(out, "filler"))
	failed := up.WaitLine(t, `"event":"error"`, 60*time.Second)
	if !strings.Contains(strings.ToLower(failed.Text), "space") {
		t.Fatalf("up's error does not say the disk is full: %s", failed.Text)
	}
	if code := s.ExitCode(); code == 0 || !strings.Contains(strings.ToLower(s.Stderr()), "space") {
		t.Fatalf("send exited %d: %s", code, s.Stderr())
	}
	if _, err := os.Stat(filepath.Join(out, "movie.bin.part")); err != nil {
		t.Fatalf("the .part was not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "movie.bin")); !os.IsNotExist(err) {
		t.Fatalf("an incomplete file is presented as complete: %v", err)
	}
}

// fill writes into path until its filesystem is full.
func fill(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for err == nil {
		_, err = f.Write(buf)
	}
}

// TestPushSenderGoesAwayWhileAsked: a sender stopped while its send is
// asked about takes the question with it, and up takes the next send.
func TestPushSenderGoesAwayWhileAsked(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	out := t.TempDir()
	up, stdin := newDevice(t, lan, 1, "desk").up(t, out)
	sender := newDevice(t, lan, 2, "laptop")
	f := filepath.Join(t.TempDir(), "x.bin")
	lanfttest.WriteRandom(t, f, 1<<20)
	s := sender.send(t, "desk", f)
	up.WaitLine(t, `"event":"ask"`, 60*time.Second)
	s.Interrupt()
	up.WaitLine(t, "went away before its send was answered", 30*time.Second)

	s = sender.send(t, "desk", f)
	decide(t, up, stdin, "laptop", true)
	exitCode(t, s, 0)
	lanfttest.SameFile(t, f, filepath.Join(out, "x.bin"))
}

// TestPushNotOnline: a name nobody has, and a user that does not take
// sends, each exit exitNotOnline and say what is online.
func TestPushNotOnline(t *testing.T) {
	url := startSignal(t)
	f := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(f, []byte("x"), 0o644)
	share := start(t, "share", "--signal", url, "--interface", "lo", "--name", "sharer", "--json", f)
	share.WaitLine(t, `"event":"online"`, 30*time.Second)
	for _, tt := range []struct{ to, want string }{
		{"nobody", `no device named "nobody" came online within 2s`},
		{"Sharer", "sharer is online but does not take sends"},
	} {
		_, stderr, code := run(t, 30*time.Second, "send", "--signal", url, "--interface", "lo", "--name", "laptop", "--wait", "2s", "--to", tt.to, f)
		if code != exitNotOnline || !strings.Contains(stderr, tt.want) {
			t.Errorf("send --to %s exited %d, want %d, saying %q: %s", tt.to, code, exitNotOnline, tt.want, stderr)
		}
	}
}

// TestPushOnlyTrusted: up --only-trusted refuses a device it does not
// trust, unasked, and writes nothing.
func TestPushOnlyTrusted(t *testing.T) {
	url := startSignal(t)
	out := t.TempDir()
	up := start(t, "up", "--signal", url, "--interface", "lo", "--name", "desk", "--json", "--only-trusted", "--out", out)
	up.WaitLine(t, `"event":"online"`, 30*time.Second)
	f := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(f, []byte("x"), 0o644)
	_, stderr, code := run(t, 60*time.Second, "send", "--signal", url, "--interface", "lo", "--name", "laptop", "--to", "desk", f)
	if code != exitRefused || !strings.Contains(stderr, "only from devices it trusts") {
		t.Fatalf("send exited %d, want %d: %s", code, exitRefused, stderr)
	}
	t.Logf("send: %s", stderr)
	up.WaitLine(t, `"event":"refused"`, 10*time.Second)
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("a refused send wrote %d entries", len(entries))
	}
}

// TestPushStdin: 64 MiB (1 GiB with LANFT_BIG=1) from standard input, of
// a size nobody knew up front, arrive identical, with size and SHA-256 in
// both histories.
func TestPushStdin(t *testing.T) {
	size := int64(64 << 20)
	if os.Getenv("LANFT_BIG") != "" {
		size = 1 << 30
	}
	lan := netns.NewLAN(t, 2)
	target, sender := newDevice(t, lan, 1, "desk"), newDevice(t, lan, 2, "laptop")
	out := t.TempDir()
	up, upIn := target.up(t, out)
	src := filepath.Join(t.TempDir(), "piped.bin")
	lanfttest.WriteRandom(t, src, size)
	s, stdin := lanfttest.StartWithStdin(t, sender.argv("send", "--json", "--wait", "30s", "--to", "desk", "--as", "backup.tar", "-")...)
	go func() {
		f, err := os.Open(src)
		if err == nil {
			io.Copy(stdin, f)
			f.Close()
		}
		stdin.Close()
	}()
	ask := up.WaitLine(t, `"event":"ask"`, 60*time.Second)
	if !strings.Contains(ask.Text, "standard input") {
		t.Errorf("the question does not say it is standard input: %s", ask.Text)
	}
	fmt.Fprintf(upIn, `{"peer":"laptop","accept":true}`+"\n")
	start := time.Now()
	exitCode(t, s, 0)
	t.Logf("%d MiB from standard input in %.1f s after the accept (%.0f MB/s)", size>>20, time.Since(start).Seconds(), float64(size)/1e6/time.Since(start).Seconds())
	lanfttest.SameFile(t, src, filepath.Join(out, "backup.tar"))
	lanfttest.NoPartFiles(t, out)
	up.WaitLine(t, `"event":"done"`, 30*time.Second) // up's history has it by then
	sum := fileSHA(t, src)
	for who, d := range map[string]*device{"up": target, "send": sender} {
		if h := d.local(t, "history"); !strings.Contains(h, "backup.tar") || !strings.Contains(h, sum) {
			t.Errorf("%s's history lacks the stream and its SHA-256:\n%s", who, h)
		}
	}
}
