package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
)

// TestShareNamesWindowsCannotHold: names legal on Linux and macOS but not
// on Windows are shared; a Linux receiver keeps them, and one with the
// Windows rule (--windows-names, the default on Windows) saves them under
// safe names and says so.
func TestShareNamesWindowsCannotHold(t *testing.T) {
	url := startSignal(t)
	src := t.TempDir()
	files := map[string]string{"Meeting: notes?.txt": "minutes\n", "a<b>.txt": "angles\n"}
	var paths []string
	for name, content := range files {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	sharer := start(t, append([]string{"share", "--signal", url, "--interface", "lo", "--name", "sharer", "--json"}, paths...)...)
	sharer.WaitLine(t, `"event":"online"`, 30*time.Second)

	for _, tc := range []struct {
		name  string
		flags []string
		saved map[string]string // manifest name -> name on disk
	}{
		{"as sent", nil, map[string]string{"Meeting: notes?.txt": "Meeting: notes?.txt", "a<b>.txt": "a<b>.txt"}},
		{"windows rule", []string{"--windows-names"}, map[string]string{"Meeting: notes?.txt": "Meeting_ notes_.txt", "a<b>.txt": "a_b_.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			args := append([]string{"receive", "--signal", url, "--interface", "lo", "--from", "sharer", "--yes", "--out", out}, tc.flags...)
			_, stderr, code := run(t, 60*time.Second, args...)
			if code != 0 {
				t.Fatalf("receive exited %d:\n%s", code, stderr)
			}
			t.Logf("receive %s:\n%s", strings.Join(tc.flags, " "), stderr)
			for from, to := range tc.saved {
				lanfttest.SameFile(t, filepath.Join(src, from), filepath.Join(out, to))
				said := strings.Contains(stderr, from+" saved as "+to+": its name is not allowed on this system")
				if renamed := from != to; said != renamed {
					t.Errorf("%s saved as %s: the output says so: %v, want %v:\n%s", from, to, said, renamed, stderr)
				}
			}
			entries, _ := os.ReadDir(out)
			if len(entries) != len(tc.saved) {
				t.Errorf("%d entries in the target folder, want %d", len(entries), len(tc.saved))
			}
		})
	}
}
