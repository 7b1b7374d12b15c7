package web_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// wasmFiles are what `go generate ./web` (web/internal/genwasm) writes
// into static/ and what is committed there.
var wasmFiles = []string{"lanft.wasm", "wasm_exec.js", "lanft.wasm.go-version"}

// TestWasmUpToDate runs the generator of `go generate ./web` into a
// temporary folder and fails when the committed static/lanft.wasm (or
// wasm_exec.js) differs from what the current code produces: the page must
// run the same identity, CPace and manifest code as the CLI.
//
// Another Go release compiles other bytes from the same code, so the test
// runs only on the release that built the committed files (recorded in
// static/lanft.wasm.go-version) and skips on any other, saying so; on CI it
// fails instead, so that the check is never skipped silently there.
func TestWasmUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the WebAssembly module (about 20 s); skipped with -short")
	}
	requireWasmRelease(t)
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "./internal/genwasm", "-o", dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./internal/genwasm: %v\n%s", err, b)
	}
	for _, name := range wasmFiles {
		same(t, filepath.Join(dir, name), filepath.Join("static", name))
	}
}

// requireWasmRelease skips the test unless this is the Go release that
// built the committed module (on CI: fails).
func requireWasmRelease(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("static/lanft.wasm.go-version")
	if err != nil {
		t.Fatalf("%v: run `go generate ./web` and commit the files it writes", err)
	}
	built := strings.TrimSpace(string(b))
	if built == runtime.Version() {
		return
	}
	msg := fmt.Sprintf("web/static/lanft.wasm was built with %s and this is %s, which compiles other bytes: "+
		"check it with that release (GOTOOLCHAIN=%s go test -run TestWasmUpToDate ./web) "+
		"or regenerate it with this one (go generate ./web) and commit the result", built, runtime.Version(), built)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI must run the Go release of the committed module")
	}
	t.Skip(msg)
}

func same(t *testing.T, built, committed string) {
	t.Helper()
	a, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("web/%s is stale for this code and %s: run `go generate ./web` and commit it", committed, runtime.Version())
	}
}
