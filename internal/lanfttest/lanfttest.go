// Package lanfttest runs the real lanft binary in tests and benchmarks:
// it builds it once a test process (Binary), starts processes (optionally
// inside a network namespace), waits for their output lines, and compares
// files.
package lanfttest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Binary is lanft built from this checkout, once per test process: every
// test and benchmark that runs the real binary asks here. The first call
// builds it (tens of seconds on a loaded machine) while the others wait; a
// failed build fails each test that asks. Call Main from TestMain to
// remove the binary when the tests end.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := built.get()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// BinaryPath is Binary for a TestMain that needs the path before any test
// runs.
func BinaryPath() (string, error) { return built.get() }

// Main runs the tests, then removes the binary that Binary built, and
// returns the exit code: func TestMain(m *testing.M) { os.Exit(lanfttest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	built.remove()
	return code
}

// built is the one build of a test process. It is package state because
// the tests of a package share one binary; Main removes it.
var built build

// build is a lanft binary built on first use into a temporary folder.
type build struct {
	mu   sync.Mutex
	done bool
	dir  string
	bin  string
	err  error
}

func (b *build) get() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.done = true
		b.dir, b.err = os.MkdirTemp("", "lanft-test-")
		if b.err == nil {
			b.bin, b.err = Build(b.dir)
		}
	}
	return b.bin, b.err
}

func (b *build) remove() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// Build compiles ./cmd/lanft into dir and returns the binary's path. Tests
// use Binary, which builds once; Build is the one recipe behind it.
func Build(dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(dir, "lanft")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/lanft")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build lanft: %v\n%s", err, out)
	}
	return bin, nil
}

// Proc is a running process whose stdout lines can be awaited.
type Proc struct {
	Cmd    *exec.Cmd
	lines  chan Line
	stderr *SyncBuffer
	done   chan struct{}
	args   []string
	peakKB atomic.Int64 // VmHWM, sampled while it runs (watchPeak)
}

// Line is one stdout line and when it was read.
type Line struct {
	Text string
	At   time.Time
}

// SyncBuffer collects a process's output: safe for its writes and a test's
// reads at the same time.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *SyncBuffer) String() string { return s.Tail(-1) }

// Tail is the last n bytes written (all of them when n < 0).
func (s *SyncBuffer) Tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.Bytes()
	if n >= 0 && len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Start runs argv (prefix it with "ip netns exec NS" to run in a
// namespace). The process is killed when the test ends, and its stderr is
// logged if the test failed.
func Start(t testing.TB, argv ...string) *Proc {
	t.Helper()
	p, _ := start(t, false, argv)
	return p
}

// StartWithStdin is Start with a pipe to the process's standard input
// (closed when the test ends, if not before).
func StartWithStdin(t testing.TB, argv ...string) (*Proc, io.WriteCloser) {
	t.Helper()
	return start(t, true, argv)
}

func start(t testing.TB, withStdin bool, argv []string) (*Proc, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	var stdin io.WriteCloser
	if withStdin {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	} else {
		cmd.Stdin = strings.NewReader("")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Proc{Cmd: cmd, lines: make(chan Line, 4096), stderr: &SyncBuffer{}, done: make(chan struct{}), args: argv}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case p.lines <- Line{sc.Text(), time.Now()}:
			default: // nobody waits for these lines
			}
		}
		close(p.lines)
	}()
	go func() { cmd.Wait(); close(p.done) }()
	go p.watchPeak()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", strings.Join(argv, " "), p.stderr.String())
		}
	})
	return p, stdin
}

// Kill kills the process group (ip netns exec forks the real process) and
// waits for it.
func (p *Proc) Kill() {
	if p.Cmd.Process != nil {
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// Interrupt sends SIGINT to the process group and waits for the exit.
func (p *Proc) Interrupt() {
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.Kill()
	}
}

// Stderr is what the process wrote to stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// ExitCode waits for the process and returns its exit code.
func (p *Proc) ExitCode() int {
	<-p.done
	return p.Cmd.ProcessState.ExitCode()
}

// MaxRSS is the peak resident set size of the exited process, in bytes:
// the largest VmHWM read from /proc while it ran (every 20 ms, so growth
// in its last moments is missed), or elsewhere its exit status's
// ru_maxrss. That one is no use on Linux: os/exec starts the child with
// vfork, and exec carries the parent's high-water mark (this test
// binary's) into the child's, so every small process reported the test
// binary's size.
func (p *Proc) MaxRSS() int64 {
	<-p.done
	if kb := p.peakKB.Load(); kb > 0 {
		return kb << 10
	}
	if ru, ok := p.Cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}

// watchPeak samples the process's VmHWM until it exits. With `ip netns
// exec` the pid is lanft's own after ip execs it, with a new high-water
// mark.
func (p *Proc) watchPeak() {
	status := fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if kb := vmHWM(status); kb > p.peakKB.Load() {
			p.peakKB.Store(kb)
		}
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
	}
}

// vmHWM is the VmHWM line of a /proc/PID/status file in KiB, 0 when there
// is none (not Linux, the process gone).
func vmHWM(status string) int64 {
	b, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// CPU is the user plus system CPU time of the exited process.
func (p *Proc) CPU() time.Duration {
	<-p.done
	return p.Cmd.ProcessState.UserTime() + p.Cmd.ProcessState.SystemTime()
}

// CPUSoFar is the user plus system CPU time of the running process so
// far, from /proc (Linux; 0 elsewhere or once it exited). With `ip netns
// exec` the process is lanft itself: ip execs it.
func (p *Proc) CPUSoFar() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which ends at the last ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// WaitLine waits for a stdout line containing want.
func (p *Proc) WaitLine(t testing.TB, want string, timeout time.Duration) Line {
	t.Helper()
	l, err := p.Next(want, timeout)
	if err != nil {
		t.Fatalf("%s: %v; stderr:\n%s", strings.Join(p.args, " "), err, p.stderr.String())
	}
	return l
}

// Next waits for a stdout line containing want.
func (p *Proc) Next(want string, timeout time.Duration) (Line, error) {
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return Line{}, fmt.Errorf("process ended before printing %q", want)
			}
			if strings.Contains(l.Text, want) {
				return l, nil
			}
		case <-deadline:
			return Line{}, fmt.Errorf("no line with %q within %s", want, timeout)
		}
	}
}

// Run runs argv to completion and returns stdout, stderr and the exit code.
func Run(t testing.TB, timeout time.Duration, argv ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = strings.NewReader("")
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v did not finish within %s; stderr:\n%s", argv, timeout, stderr.String())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	default:
		t.Fatalf("run %v: %v", argv, err)
		return "", "", -1
	}
}

// WriteRandom writes size pseudo-random (incompressible) bytes to path.
func WriteRandom(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), 42})
	if _, err := io.CopyN(f, r, size); err != nil {
		t.Fatal(err)
	}
	// On disk before any transfer, as a user's file is: a receiver on the
	// same filesystem syncs it (syncfs) and would pay for writing it too.
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// SameFile fails the test unless got holds exactly the bytes of want.
func SameFile(t testing.TB, want, got string) {
	t.Helper()
	a, err := os.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.Open(got)
	if err != nil {
		t.Fatalf("received file missing: %v", err)
	}
	defer b.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			t.Fatalf("%s differs from %s near byte %d", got, want, off)
		}
		off += int64(na)
		if ea != nil || eb != nil {
			if (ea == nil) != (eb == nil) {
				t.Fatalf("%s and %s differ in length", got, want)
			}
			return
		}
	}
}

// NoPartFiles fails the test if any .part file is left under dir.
func NoPartFiles(t testing.TB, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".part") {
			t.Errorf("left behind: %s", path)
		}
		return nil
	})
}
