package web_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestWasmUpToDate rebuilds web/wasm exactly as `go generate ./web` does
// and fails when the committed static/lanft.wasm (or wasm_exec.js) is not
// what the current code and Go toolchain produce: the page must run the
// same identity, CPace and manifest code as the CLI.
func TestWasmUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the WebAssembly module (about 20 s); skipped with -short")
	}
	out := filepath.Join(t.TempDir(), "lanft.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, "./wasm")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	same(t, out, "static/lanft.wasm")

	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	same(t, filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"), "static/wasm_exec.js")
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
