package transfer

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// windowsNames are names that Linux and macOS hold and Windows does not,
// with the name a receiver under NamesWindows gives them. They are valid
// manifests everywhere (TestValidateManifest, FuzzManifest seeds).
var windowsNames = []struct{ name, in, want string }{
	{"colon and question mark", "Meeting: notes?.txt", "Meeting_ notes_.txt"},
	{"angle brackets", "a<b>.txt", "a_b_.txt"},
	{"alternate data stream", "file:stream", "file_stream"},
	{"drive relative", "C:x", "C_x"},
	{"star", "a*b", "a_b"},
	{"pipe", "a|b", "a_b"},
	{"double quote", `a"b`, "a_b"},
	{"trailing dot", "a.", "a_"},
	{"trailing dot and space", "a. ", "a__"},
	{"only dots", "...", "___"},
	{"trailing space", "a ", "a_"},
	{"trailing dot in folder", "dir./x", "dir_/x"},
	{"device CON", "CON", "CON_"},
	{"device with extension", "NUL.txt", "NUL_.txt"},
	{"device with double extension", "nul.tar.gz", "nul_.tar.gz"},
	{"device lower case in folder", "dir/com1.log", "dir/com1_.log"},
	{"device LPT9", "LPT9", "LPT9_"},
	{"device superscript", "com¹.txt", "com¹_.txt"},
	{"device console", "CONIN$", "CONIN$_"},
	{"device as folder", "aux/x", "aux_/x"},
	{"device space before extension", "prn .txt", "prn _.txt"},
	{"device with trailing dot", "CON.", "CON_"},
	{"folder and file", "a:b/c?d/e.txt", "a_b/c_d/e.txt"},
	{"longest component", strings.Repeat("?", MaxComponentLen), strings.Repeat("_", MaxComponentLen)},
	{"longest device name", "CON." + strings.Repeat("x", MaxComponentLen-4), "CON_." + strings.Repeat("x", MaxComponentLen-4)},
}

func TestNameRuleComponent(t *testing.T) {
	for _, tc := range windowsNames {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manifest{Entries: named(tc.in)}
			if err := ValidateManifest(m); err != nil {
				t.Fatalf("ValidateManifest: %v; want the name accepted (only Windows cannot hold it)", err)
			}
			local, err := localNames(m, NamesWindows)
			if err != nil || local == nil || local[0] != tc.want {
				t.Fatalf("Windows rule: got %q, %v; want %q", local, err, tc.want)
			}
			checkWindowsSafe(t, local[0])
			if local, err := localNames(m, NamesAsSent); local != nil || err != nil {
				t.Errorf("as-sent rule: got %q, %v; want the name kept", local, err)
			}
		})
	}
	// What Windows holds is kept as it is under either rule.
	for _, tc := range goodManifests {
		if strings.HasPrefix(tc.name, "windows ") {
			continue
		}
		local, err := localNames(&Manifest{Entries: tc.entries}, NamesWindows)
		if err != nil || local != nil {
			t.Errorf("%s: Windows rule renamed %q (%v); want every name kept", tc.name, local, err)
		}
	}
}

// checkWindowsSafe fails unless Windows can hold every component of p and p
// is a valid manifest path, but for a '_' added to a name of the longest
// length.
func checkWindowsSafe(t *testing.T, p string) {
	t.Helper()
	if err := checkPath(p); err != nil && !strings.Contains(err.Error(), "longer than") {
		t.Errorf("safe name %q: %v", p, err)
	}
	for comp := range strings.SplitSeq(p, "/") {
		if why := windowsProblem(comp); why != "" {
			t.Errorf("safe name %q: %q %s", p, comp, why)
		}
		if len(comp) > MaxComponentLen+1 {
			t.Errorf("safe name %q: %q is longer than %d bytes", p, comp, MaxComponentLen+1)
		}
	}
}

func TestLocalNamesNeverCollide(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		want    []string // local paths in manifest order
	}{
		{"safe name listed after",
			[]Entry{fileEntry("a<b.txt", "1"), fileEntry("a_b.txt", "2")},
			[]string{"a_b (1).txt", "a_b.txt"}},
		{"safe name listed before",
			[]Entry{fileEntry("a_b.txt", "1"), fileEntry("a<b.txt", "2")},
			[]string{"a_b.txt", "a_b (1).txt"}},
		{"two names with one safe name",
			[]Entry{fileEntry("a<b.txt", "1"), fileEntry("a>b.txt", "2"), fileEntry("a_b (1).txt", "3")},
			[]string{"a_b.txt", "a_b (2).txt", "a_b (1).txt"}},
		{"case fold",
			[]Entry{fileEntry("A<B", "1"), fileEntry("a_b", "2")},
			[]string{"A_B (1)", "a_b"}},
		{"part file of the safe name",
			[]Entry{fileEntry("a?", "1"), fileEntry("a_.part", "2")},
			[]string{"a_ (1)", "a_.part"}},
		{"safe name is a folder",
			[]Entry{fileEntry("d?", "1"), fileEntry("d_/x", "2")},
			[]string{"d_ (1)", "d_/x"}},
		{"renamed folder keeps its contents together",
			[]Entry{dirEntry("x:y"), fileEntry("x:y/f?.txt", "1"), fileEntry("x:y/f_.txt", "2"), fileEntry("x_y/g.txt", "3"), fileEntry("x:y/sub/h", "4")},
			[]string{"x_y (1)", "x_y (1)/f_ (1).txt", "x_y (1)/f_.txt", "x_y/g.txt", "x_y (1)/sub/h"}},
		{"implicit renamed folder",
			[]Entry{fileEntry("p|q/a", "1"), fileEntry("p|q/b", "2"), dirEntry("p|q")},
			[]string{"p_q/a", "p_q/b", "p_q"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manifest{Entries: tc.entries}
			if err := ValidateManifest(m); err != nil {
				t.Fatal(err)
			}
			local, err := localNames(m, NamesWindows)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(local, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", local, tc.want)
			}
			// The local names are a valid manifest of their own: distinct
			// after folding, no file inside a file, no .part collision.
			lm := &Manifest{Entries: append([]Entry(nil), tc.entries...)}
			for i := range local {
				lm.Entries[i].Path = local[i]
				checkWindowsSafe(t, local[i])
			}
			if err := ValidateManifest(lm); err != nil {
				t.Errorf("local names are not a valid manifest: %v", err)
			}
			again, _ := localNames(m, NamesWindows)
			if strings.Join(again, "|") != strings.Join(local, "|") {
				t.Errorf("not deterministic: %q then %q", local, again)
			}
		})
	}
}

// TestReceiveUnholdableNames shares real files whose names Linux holds and
// Windows does not, over TCP, into a receiver under each rule.
func TestReceiveUnholdableNames(t *testing.T) {
	srcDir := t.TempDir()
	files := map[string]string{
		"Meeting: notes?.txt":    "minutes",
		"a<b>.txt":               "angles",
		"a_b_.txt":               "the safe name, taken by the manifest",
		"notes:2024/CON.txt":     "a device name in a folder with a colon",
		"notes:2024/plain.txt":   "plain",
		"notes_2024/already.txt": "a folder with the safe name",
	}
	writeTree(t, srcDir, files)
	var paths []string
	for _, n := range []string{"Meeting: notes?.txt", "a<b>.txt", "a_b_.txt", "notes:2024", "notes_2024"} {
		paths = append(paths, filepath.Join(srcDir, n))
	}
	src := newSource(t, paths...) // the sender no longer refuses them

	for _, tc := range []struct {
		rule    NameRule
		renamed map[string]string
	}{
		{NamesAsSent, nil},
		{NamesWindows, map[string]string{
			"Meeting: notes?.txt":  "Meeting_ notes_.txt",
			"a<b>.txt":             "a_b_ (1).txt",
			"notes:2024/CON.txt":   "notes_2024 (1)/CON_.txt",
			"notes:2024/plain.txt": "notes_2024 (1)/plain.txt",
		}},
	} {
		t.Run(tc.rule.String(), func(t *testing.T) {
			dir := t.TempDir()
			a, b := tcpPair(t)
			var (
				wg       sync.WaitGroup
				serveErr error
			)
			wg.Go(func() { serveErr = src.Serve(t.Context(), a, SendOptions{}); a.Close() })
			res, err := Receive(t.Context(), b, ReceiveOptions{Dir: dir, Names: tc.rule})
			b.Close()
			wg.Wait()
			if err != nil || serveErr != nil {
				t.Fatalf("Receive: %v; Serve: %v", err, serveErr)
			}
			if !maps.Equal(res.Renamed, tc.renamed) {
				t.Errorf("Renamed: got %q, want %q", res.Renamed, tc.renamed)
			}
			for from, to := range tc.renamed {
				want := ReasonNotHere
				if from == "notes:2024/plain.txt" {
					want = ReasonFolderNot
				}
				if why := res.RenameReason(from); why != want {
					t.Errorf("RenameReason(%q) = %q (saved as %q), want %q", from, why, to, want)
				}
			}
			if why := res.RenameReason("a_b_.txt"); why != "" {
				t.Errorf("RenameReason of a file kept as it is: %q", why)
			}
			if tc.rule == NamesWindows {
				filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
					if rel, _ := filepath.Rel(dir, p); err == nil && rel != "." {
						checkWindowsSafe(t, filepath.ToSlash(rel))
					}
					return err
				})
			}
			want := make(map[string]string)
			for p, content := range files {
				if to, ok := tc.renamed[p]; ok {
					p = to
				}
				want[p] = content
			}
			for p, content := range want {
				b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
				if err != nil || string(b) != content {
					t.Errorf("%s: got %q, %v; want %q", p, b, err, content)
				}
			}
			if parts := findParts(t, dir); len(parts) != 0 {
				t.Errorf(".part files left: %q", parts)
			}
		})
	}
}

// TestResumeRenamedFile interrupts a file saved under a safe name and checks
// that the next run finds its .part again and fetches only the rest.
func TestResumeRenamedFile(t *testing.T) {
	const size = 8 << 20
	srcDir := t.TempDir()
	randomFile(t, filepath.Join(srcDir, "report?.bin"), size, 3)
	src := newSource(t, filepath.Join(srcDir, "report?.bin"))
	dir := t.TempDir()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err, _ := runTransfer(ctx, src, ReceiveOptions{Dir: dir, Names: NamesWindows, Progress: func(p Progress) {
		if p.Done > p.Total/2 {
			cancel()
		}
	}}, SendOptions{})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted Receive: got %v, want ErrInterrupted", err)
	}
	parts := findParts(t, dir)
	if len(parts) != 1 || filepath.Base(parts[0]) != "report_.bin"+PartSuffix {
		t.Fatalf("partial files: got %q, want report_.bin.part", parts)
	}
	fi, err := os.Stat(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	have := fi.Size()

	res, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{Dir: dir, Names: NamesWindows}, SendOptions{})
	if err != nil || serveErr != nil {
		t.Fatalf("resumed Receive: %v; Serve: %v", err, serveErr)
	}
	if res.Skipped != have || res.Bytes != size-have {
		t.Errorf("resumed: skipped %d and received %d bytes; want %d and %d", res.Skipped, res.Bytes, have, size-have)
	}
	if res.Renamed["report?.bin"] != "report_.bin" {
		t.Errorf("Renamed: got %q", res.Renamed)
	}
	if got, want := fileSum(t, filepath.Join(dir, "report_.bin")), src.Manifest().Entries[0].SHA256; got != want {
		t.Errorf("SHA-256: got %s, want %s", got, want)
	}
	// A third run finds the file complete under its safe name.
	res, err, serveErr = runTransfer(t.Context(), src, ReceiveOptions{Dir: dir, Names: NamesWindows}, SendOptions{})
	if err != nil || serveErr != nil || res.Bytes != 0 || res.Skipped != size {
		t.Errorf("third run: %+v, %v, %v; want everything already there", res, err, serveErr)
	}
}

func TestNamesNative(t *testing.T) {
	want := NamesAsSent
	if runtime.GOOS == "windows" {
		want = NamesWindows
	}
	if got := NamesNative.effective(); got != want {
		t.Errorf("NamesNative on %s: got %v, want %v", runtime.GOOS, got, want)
	}
}
