package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// victim is a target folder with an existing file, next to a folder that
// must never be touched.
type victim struct {
	base, dir, outside string
}

func newVictim(t *testing.T) victim {
	t.Helper()
	base := t.TempDir()
	v := victim{base: base, dir: filepath.Join(base, "recv"), outside: filepath.Join(base, "outside")}
	writeTree(t, v.dir, map[string]string{"existing.txt": "keep me"})
	writeTree(t, v.outside, map[string]string{"secret.txt": "secret", "x.txt": "outside x"})
	return v
}

// received returns the files under v.dir other than existing.txt, with
// their content.
func (v victim) received(t *testing.T) map[string]string {
	t.Helper()
	got := make(map[string]string)
	filepath.WalkDir(v.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(v.dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "existing.txt" {
			return nil
		}
		b, _ := os.ReadFile(p)
		got[rel] = string(b)
		return nil
	})
	return got
}

// checkUntouched fails if anything outside v.dir, or existing.txt, changed.
func (v victim) checkUntouched(t *testing.T, before map[string]string) {
	t.Helper()
	after := snapshot(t, v.base)
	for k, val := range before {
		if k == "recv" || (strings.HasPrefix(k, "recv/") && k != "recv/existing.txt") {
			continue
		}
		if after[k] != val {
			t.Errorf("%s changed: %q -> %q", k, val, after[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok && !strings.HasPrefix(k, "recv/") {
			t.Errorf("%s was created outside the target folder", k)
		}
	}
}

func TestReceiveRefusesBadManifest(t *testing.T) {
	for _, rule := range []NameRule{NamesAsSent, NamesWindows} {
		t.Run(rule.String(), func(t *testing.T) { testReceiveRefusesBadManifest(t, rule) })
	}
}

// testReceiveRefusesBadManifest: a name unsafe everywhere is refused
// whatever the receiver's rule for names its system cannot hold.
func testReceiveRefusesBadManifest(t *testing.T, rule NameRule) {
	for _, tc := range badManifests {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := decodeManifestJSON(manifestJSON(tc.entries)); err == nil && !slices.Equal(m, tc.entries) {
				t.Skip("JSON cannot carry this name: decoding replaces invalid UTF-8 with U+FFFD")
			}
			v := newVictim(t)
			before := snapshot(t, v.base)
			accepted := false
			var stream []byte
			stream = append(stream, manifestFrame(t, tc.entries...)...)
			stream = append(stream, fileFrame(0, 0)...)
			stream = append(stream, dataFrame("x")...)
			stream = append(stream, endFrame...)
			_, err := hostileReceive(t, stream, false, ReceiveOptions{
				Dir:    v.dir,
				Accept: func(context.Context, *Manifest) error { accepted = true; return nil },
				Names:  rule,
			})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.text)
			}
			assertPrintable(t, err.Error())
			if accepted {
				t.Error("Accept was called for an invalid manifest")
			}
			if d := diffSnapshots(before, snapshot(t, v.base)); d != "" {
				t.Errorf("a refused manifest changed files:\n%s", d)
			}
		})
	}
}

func TestReceiveHostileSender(t *testing.T) {
	hello := fileEntry("hello.txt", "hello")
	world := fileEntry("w.txt", "world")
	M := func(e ...Entry) []byte { return manifestFrame(t, e...) }
	F, D, E := fileFrame, dataFrame, endFrame
	tests := []struct {
		name   string
		stream []byte
		want   error
		text   string
		after  map[string]string // files in the target folder afterwards
		hangUp bool              // the sender closes the connection after the stream
	}{
		{"more bytes than declared in one frame", concat(M(hello), F(0, 0), D("hello world"), E),
			ErrIntegrity, `the sender sent more than the 5 bytes declared for "hello.txt"; the partial file was deleted`, nil, false},
		{"more bytes than declared in another frame", concat(M(hello), F(0, 0), D("hello"), D("!"), E),
			ErrIntegrity, `more than the 5 bytes declared for "hello.txt"`, nil, false},
		{"more bytes for an empty file", concat(M(fileEntry("e", "")), F(0, 0), D("x"), E),
			ErrIntegrity, `more than the 0 bytes declared for "e"`, nil, false},
		{"fewer bytes, then END", concat(M(hello), F(0, 0), D("hel"), E),
			ErrIntegrity, `the sender sent 3 of the 5 bytes declared for "hello.txt"; the partial file was deleted`, nil, false},
		{"fewer bytes, then the next file", concat(M(hello, world), F(0, 0), D("hel"), F(1, 0), D("world"), E),
			ErrIntegrity, `sent 3 of the 5 bytes declared for "hello.txt"`, nil, false},
		{"wrong content", concat(M(hello), F(0, 0), D("HELLO"), E),
			ErrIntegrity, `"hello.txt" arrived corrupted (SHA-256 mismatch); the partial file was deleted`, nil, false},
		{"second manifest mid-way", concat(M(hello), F(0, 0), D("he"), M(hello)),
			ErrProtocol, "unexpected MANIFEST frame while receiving files", map[string]string{"hello.txt.part": "he"}, false},
		{"data before any file", concat(M(hello), D("hello"), E),
			ErrProtocol, "DATA frame outside any file", nil, false},
		{"data for an unknown file", concat(M(hello), F(7, 0), D("hello"), E),
			ErrProtocol, "FILE frame for entry 7, which is not the next file requested", nil, false},
		{"file frame for a folder", concat(M(dirEntry("d"), fileEntry("d/x", "x")), F(0, 0), E),
			ErrProtocol, "FILE frame for entry 0", nil, false},
		{"files out of order", concat(M(hello, world), F(1, 0), D("world"), E),
			ErrProtocol, "FILE frame for entry 1", nil, false},
		{"same file twice", concat(M(hello, world), F(0, 0), D("hello"), F(0, 0), D("hello"), E),
			ErrProtocol, "FILE frame for entry 0", map[string]string{"hello.txt": "hello"}, false},
		{"resume offset nobody asked for", concat(M(hello), F(0, 2), D("llo"), E),
			ErrProtocol, `the sender started "hello.txt" at byte 2; expected 0`, nil, false},
		{"END before the requested files", concat(M(hello, world), F(0, 0), D("hello"), E),
			ErrIntegrity, `the sender ended the transfer without sending "w.txt"`, map[string]string{"hello.txt": "hello"}, false},
		{"huge manifest length prefix", header(frameManifest, 0xFFFFFFFF),
			ErrProtocol, "MANIFEST frame of 4294967295 bytes is outside the allowed", nil, false},
		{"huge data length prefix", concat(M(hello), F(0, 0), header(frameData, 0x7FFFFFFF)),
			ErrProtocol, "DATA frame of 2147483647 bytes", map[string]string{"hello.txt.part": ""}, false},
		{"unknown frame type", concat(M(hello), header('Z', 0)),
			ErrProtocol, "unknown frame type 0x5a", nil, false},
		{"plan from the sender", rawFrame(framePlan, []byte(`{"files":[]}`)),
			ErrProtocol, "expected a MANIFEST frame, got PLAN", nil, false},
		{"OK from the sender", concat(M(hello), rawFrame(frameOK, nil)),
			ErrProtocol, "unexpected OK frame while receiving files", nil, false},
		{"sender error with terminal escapes", concat(M(hello), rawFrame(frameError, []byte(`{"code":"failed","message":"boom \u001b[31m red \u202e"}`))),
			ErrRemote, `the sender stopped the transfer: boom \x1b[31m red \u202e`, nil, false},
		{"malformed error frame", concat(M(hello), rawFrame(frameError, []byte(`{x`))),
			ErrProtocol, "malformed ERROR frame from the sender", nil, false},
		{"connection lost mid-file", concat(M(hello), F(0, 0), D("he")),
			ErrInterrupted, `connection to the sender lost while receiving "hello.txt" (2 B of 5 B); the partial file is kept`, map[string]string{"hello.txt.part": "he"}, true},
		{"connection lost inside a frame", concat(M(hello), F(0, 0), header(frameData, 4), []byte("he")),
			ErrInterrupted, "connection to the sender lost", map[string]string{"hello.txt.part": ""}, true},
		{"connection lost before the manifest", header(frameManifest, 100)[:3],
			ErrInterrupted, "connection to the sender lost", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVictim(t)
			before := snapshot(t, v.base)
			_, err := hostileReceive(t, tc.stream, tc.hangUp, ReceiveOptions{Dir: v.dir})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.text)
			}
			assertPrintable(t, err.Error())
			v.checkUntouched(t, before)
			if got := v.received(t); !maps.Equal(got, tc.after) && (len(got) > 0 || len(tc.after) > 0) {
				t.Errorf("target folder holds %q, want %q", got, tc.after)
			}
		})
	}
}

func TestReceiveNeverOverwrites(t *testing.T) {
	v := newVictim(t)
	before := snapshot(t, v.base)
	stream := concat(manifestFrame(t, fileEntry("existing.txt", "evil")), fileFrame(0, 0), dataFrame("evil"), endFrame)
	res, err := hostileReceive(t, stream, false, ReceiveOptions{Dir: v.dir})
	if err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	v.checkUntouched(t, before)
	if got, want := res.Renamed["existing.txt"], "existing (1).txt"; got != want {
		t.Errorf("Renamed[existing.txt]: got %q, want %q", got, want)
	}
	if got := v.received(t); !maps.Equal(got, map[string]string{"existing (1).txt": "evil"}) {
		t.Errorf("target folder holds %q, want only the renamed copy", got)
	}
}

func TestReceiveSymlinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	tests := []struct {
		name   string
		setup  func(t *testing.T, v victim)
		stream func(t *testing.T) []byte
		text   string
	}{
		{
			name:  "folder link to outside",
			setup: func(t *testing.T, v victim) { symlink(t, v.outside, filepath.Join(v.dir, "link")) },
			stream: func(t *testing.T) []byte {
				return concat(manifestFrame(t, dirEntry("link"), fileEntry("link/x.txt", "pwned")), fileFrame(1, 0), dataFrame("pwned"), endFrame)
			},
			text: `"link" is a symbolic link in the target folder; refusing to follow it`,
		},
		{
			name:  "undeclared folder link to outside",
			setup: func(t *testing.T, v victim) { symlink(t, v.outside, filepath.Join(v.dir, "link")) },
			stream: func(t *testing.T) []byte {
				return concat(manifestFrame(t, fileEntry("link/new.txt", "pwned")), fileFrame(0, 0), dataFrame("pwned"), endFrame)
			},
			text: `"link" is a symbolic link`,
		},
		{
			name: "file link to outside",
			setup: func(t *testing.T, v victim) {
				symlink(t, filepath.Join(v.outside, "secret.txt"), filepath.Join(v.dir, "a.txt"))
			},
			stream: func(t *testing.T) []byte {
				return concat(manifestFrame(t, fileEntry("a.txt", "pwned")), fileFrame(0, 0), dataFrame("pwned"), endFrame)
			},
			text: `"a.txt" is a symbolic link in the target folder; refusing to follow or replace it`,
		},
		{
			name: "part file link to outside",
			setup: func(t *testing.T, v victim) {
				symlink(t, filepath.Join(v.outside, "secret.txt"), filepath.Join(v.dir, "a.txt.part"))
			},
			stream: func(t *testing.T) []byte {
				return concat(manifestFrame(t, fileEntry("a.txt", "pwned")), fileFrame(0, 0), dataFrame("pwned"), endFrame)
			},
			text: `"a.txt.part" is a symbolic link`,
		},
		{
			name: "dangling link",
			setup: func(t *testing.T, v victim) {
				symlink(t, filepath.Join(v.outside, "new.txt"), filepath.Join(v.dir, "n.txt"))
			},
			stream: func(t *testing.T) []byte {
				return concat(manifestFrame(t, fileEntry("n.txt", "pwned")), fileFrame(0, 0), dataFrame("pwned"), endFrame)
			},
			text: `"n.txt" is a symbolic link`,
		},
		{
			name: "link inside the target folder",
			setup: func(t *testing.T, v victim) {
				writeTree(t, v.dir, map[string]string{"real/": ""})
				symlink(t, "real", filepath.Join(v.dir, "alias"))
			},
			stream: func(t *testing.T) []byte {
				return concat(manifestFrame(t, fileEntry("alias/x.txt", "x")), fileFrame(0, 0), dataFrame("x"), endFrame)
			},
			text: `"alias" is a symbolic link`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVictim(t)
			tc.setup(t, v)
			before := snapshot(t, v.base)
			_, err := hostileReceive(t, tc.stream(t), false, ReceiveOptions{Dir: v.dir})
			if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want ErrConflict containing %q", err, tc.text)
			}
			if d := diffSnapshots(before, snapshot(t, v.base)); d != "" {
				t.Errorf("files changed:\n%s", d)
			}
		})
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestServeHostileReceiver(t *testing.T) {
	srcDir := t.TempDir()
	writeTree(t, srcDir, map[string]string{"d/x.txt": "x", "d/y.txt": "yy"})
	src := newSource(t, filepath.Join(srcDir, "d")) // entries: d, d/x.txt, d/y.txt
	plan := func(s string) []byte { return rawFrame(framePlan, []byte(s)) }
	tests := []struct {
		name  string
		reply []byte // sent after reading the MANIFEST
		want  error
		text  string
	}{
		{"index out of range", plan(`{"files":[{"index":9}]}`), ErrProtocol, "entry 9, out of order or out of range"},
		{"negative index", plan(`{"files":[{"index":-1}]}`), ErrProtocol, "entry -1"},
		{"descending", plan(`{"files":[{"index":2},{"index":1}]}`), ErrProtocol, "entry 1, out of order"},
		{"duplicate", plan(`{"files":[{"index":1},{"index":1}]}`), ErrProtocol, "entry 1, out of order"},
		{"folder", plan(`{"files":[{"index":0}]}`), ErrProtocol, `asked for folder "d" as a file`},
		{"offset past the end", plan(`{"files":[{"index":1,"offset":2,"sha256":"` + sumOf("xx") + `"}]}`), ErrProtocol, `resume "d/x.txt" at byte 2 of 1`},
		{"negative offset", plan(`{"files":[{"index":1,"offset":-1}]}`), ErrProtocol, "at byte -1"},
		{"offset without hash", plan(`{"files":[{"index":2,"offset":1}]}`), ErrProtocol, "bad partial-file hash"},
		{"hash without offset", plan(`{"files":[{"index":2,"sha256":"` + sumOf("") + `"}]}`), ErrProtocol, "bad partial-file hash"},
		{"malformed plan", plan(`{x`), ErrProtocol, "malformed PLAN"},
		{"huge plan length prefix", header(framePlan, 0xFFFFFFFF), ErrProtocol, "PLAN frame of 4294967295 bytes"},
		{"OK instead of a plan", rawFrame(frameOK, nil), ErrProtocol, "sent OK instead of PLAN"},
		{"data from the receiver", dataFrame("x"), ErrProtocol, "unexpected DATA frame from the receiver"},
		{"two plans", concat(plan(`{"files":[]}`), plan(`{"files":[]}`)), ErrProtocol, "unexpected PLAN frame from the receiver"},
		{"receiver error with escapes", rawFrame(frameError, []byte(`{"code":"no_space","message":"full\u001b]0;x"}`)), ErrNoSpace, `the receiver stopped the transfer: full\x1b]0;x`},
		{"receiver hangs up", nil, ErrInterrupted, "connection to the receiver lost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			var wg sync.WaitGroup
			wg.Go(func() {
				fr := newFrameReader(b, maxDataLen)
				if typ, _, err := fr.next(); err != nil || typ != frameManifest {
					t.Errorf("fake receiver: got %s, %v; want MANIFEST", typ, err)
				}
				if len(tc.reply) == 0 {
					b.Close()
					return
				}
				b.Write(tc.reply)
				io.Copy(io.Discard, b)
				b.Close()
			})
			err := src.Serve(t.Context(), a, SendOptions{})
			a.Close()
			wg.Wait()
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.text)
			}
			assertPrintable(t, err.Error())
		})
	}
}

// decodeManifestJSON decodes manifest JSON without validating it.
func decodeManifestJSON(b []byte) ([]Entry, error) {
	var w wireManifest
	err := json.Unmarshal(b, &w)
	return w.Entries, err
}

// A sender that stops reading must not keep a failed Receive waiting.
func TestReceiveSenderNotReading(t *testing.T) {
	v := newVictim(t)
	a, b := net.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() { a.Write(manifestFrame(t, fileEntry("../x", "x"))) }) // then never reads
	_, err := Receive(t.Context(), b, ReceiveOptions{Dir: v.dir, lastWord: time.Millisecond})
	wg.Wait()
	a.Close()
	if !errors.Is(err, ErrUnsafeName) {
		t.Fatalf("got %v, want ErrUnsafeName", err)
	}
}

// TestReceiveChecksManifest: CheckManifest sees the MANIFEST payload as it
// arrived. A list changed on the way together with its file (what a
// machine in the middle of plain HTTP can do) passes every other check;
// the check refuses it as corrupted before Accept and before any write.
func TestReceiveChecksManifest(t *testing.T) {
	sent, evil := fileEntry("hello.txt", "hello"), fileEntry("hello.txt", "HELLO")
	want := sha256.Sum256(manifestJSON([]Entry{sent}))
	check := func(raw []byte) error {
		if sha256.Sum256(raw) != want {
			return errors.New("its SHA-256 is not the one the sender gave")
		}
		return nil
	}
	t.Run("changed", func(t *testing.T) {
		v := newVictim(t)
		before := snapshot(t, v.base)
		accepted := false
		_, err := hostileReceive(t, concat(manifestFrame(t, evil), fileFrame(0, 0), dataFrame("HELLO"), endFrame), false, ReceiveOptions{
			Dir:           v.dir,
			Accept:        func(context.Context, *Manifest) error { accepted = true; return nil },
			CheckManifest: check,
		})
		if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), "the list of files arrived changed; nothing was written") {
			t.Fatalf("got %v, want an integrity error saying the list changed", err)
		}
		if accepted {
			t.Error("Accept was called for a list that failed the check")
		}
		if d := diffSnapshots(before, snapshot(t, v.base)); d != "" {
			t.Errorf("a refused list changed files:\n%s", d)
		}
	})
	t.Run("as sent", func(t *testing.T) {
		v := newVictim(t)
		_, err := hostileReceive(t, concat(manifestFrame(t, sent), fileFrame(0, 0), dataFrame("hello"), endFrame), false, ReceiveOptions{
			Dir:           v.dir,
			CheckManifest: check,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := v.received(t); got["hello.txt"] != "hello" {
			t.Fatalf("received %v, want hello.txt", got)
		}
	})
}
