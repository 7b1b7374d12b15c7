package transfer

import (
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// tagFile writes lanft's tag (the complete file's SHA-256, hex sum) on the
// file at p, as lanft does on a .part it creates; the test skips where the
// filesystem holds no tags.
func tagFile(t *testing.T, p, sum string) {
	t.Helper()
	b, err := hex.DecodeString(sum)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad sum %q", sum)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := setPartTag(f, [32]byte(b)); err != nil {
		t.Skipf("the filesystem here holds no extended attributes (%v): .part files cannot be told apart", err)
	}
}

// planOf runs Receive against a sender that sends m's manifest and returns
// the PLAN the receiver answers, decoded; then it hangs up.
func planOf(t *testing.T, dir string, entries ...Entry) []wantFile {
	t.Helper()
	a, b := net.Pipe()
	var (
		wg   sync.WaitGroup
		plan []wantFile
	)
	wg.Go(func() {
		defer a.Close()
		if _, err := a.Write(manifestFrame(t, entries...)); err != nil {
			t.Errorf("write manifest: %v", err)
			return
		}
		typ, p, err := newFrameReader(a, 4<<10).next()
		if err != nil || typ != framePlan {
			t.Errorf("receiver answered %v %v, want a PLAN", typ, err)
			return
		}
		var w wirePlan
		if err := json.Unmarshal(p, &w); err != nil {
			t.Errorf("PLAN %q: %v", p, err)
		}
		plan = w.Files
	})
	Receive(t.Context(), b, ReceiveOptions{Dir: dir}) // interrupted by the hang-up
	b.Close()
	wg.Wait()
	return plan
}

// The PLAN tells the sender only what it needs to resume: an offset (and
// the prefix's hash) for a .part of this very file; for a file whose name
// is taken by another file's .part, by a different complete file, or that
// has a tagged .part of another version, exactly what it says for a file
// the folder has never seen; a complete identical file (content verified)
// is left out. Files outside the manifest are never mentioned.
func TestPlanRevealsOnlyResumableParts(t *testing.T) {
	entries := []Entry{
		fileEntry("fresh.txt", "nothing of it here"),
		fileEntry("mine.txt", "a part of this very file"),
		fileEntry("foreign.txt", "the sharer's foreign.txt"),
		fileEntry("version.txt", "version two"),
		fileEntry("diff.txt", "the sharer's diff.txt"),
		fileEntry("same.txt", "identical"),
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"mine.txt" + PartSuffix:      "a part of",
		"foreign.txt" + PartSuffix:   "someone else's download",
		"version.txt" + PartSuffix:   "version o",
		"diff.txt":                   "the receiver's own diff.txt",
		"same.txt":                   "identical",
		"unrelated.doc":              "not in the manifest",
		"unrelated.doc" + PartSuffix: "not in the manifest either",
	})
	tagFile(t, filepath.Join(dir, "mine.txt"+PartSuffix), entries[1].SHA256)
	tagFile(t, filepath.Join(dir, "version.txt"+PartSuffix), fileEntry("version.txt", "version one").SHA256)
	before := snapshot(t, dir)

	fresh := planOf(t, t.TempDir(), entries...)
	got := planOf(t, dir, entries...)
	want := slices.Clone(fresh)
	want = slices.DeleteFunc(want, func(w wantFile) bool { return w.Index == 5 }) // same.txt: skipped
	want[1].Offset, want[1].SHA256 = int64(len("a part of")), sumOf("a part of")
	if !slices.Equal(got, want) {
		t.Errorf("PLAN %+v,\nwant %+v (an empty folder's %+v, with mine.txt's offset and same.txt left out)", got, want, fresh)
	}
	if d := diffSnapshots(before, snapshot(t, dir)); d != "" {
		t.Errorf("planning changed the folder:\n%s", d)
	}

	// The whole transfer: the others' .part files are left as they were,
	// and the files that met them saved under other names.
	content := map[string]string{
		"fresh.txt": "nothing of it here", "mine.txt": "a part of this very file", "foreign.txt": "the sharer's foreign.txt",
		"version.txt": "version two", "diff.txt": "the sharer's diff.txt", "same.txt": "identical",
	}
	srcDir := t.TempDir()
	writeTree(t, srcDir, content)
	var paths []string
	for _, e := range entries {
		if fileEntry(e.Path, content[e.Path]).SHA256 != e.SHA256 {
			t.Fatalf("test: %s's content differs from its entry", e.Path)
		}
		paths = append(paths, filepath.Join(srcDir, e.Path))
	}
	src := newSource(t, paths...)
	res, err, serveErr := runTransfer(t.Context(), src, ReceiveOptions{Dir: dir}, SendOptions{})
	if err != nil || serveErr != nil {
		t.Fatalf("Receive: %v; Serve: %v", err, serveErr)
	}
	for p, wantName := range map[string]string{"foreign.txt": "foreign (1).txt", "version.txt": "version (1).txt", "diff.txt": "diff (1).txt"} {
		if res.Renamed[p] != wantName {
			t.Errorf("%s saved as %q, want %q", p, res.Renamed[p], wantName)
		}
	}
	after := snapshot(t, dir)
	for _, keep := range []string{"foreign.txt" + PartSuffix, "version.txt" + PartSuffix, "diff.txt", "unrelated.doc" + PartSuffix} {
		if after[keep] != before[keep] {
			t.Errorf("%s changed: %q, was %q", keep, after[keep], before[keep])
		}
	}
	if res.Skipped != int64(len("a part of")+len("identical")) {
		t.Errorf("Skipped %d, want mine.txt's .part and same.txt", res.Skipped)
	}
}
