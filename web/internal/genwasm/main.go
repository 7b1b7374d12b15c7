// Command genwasm builds the browser page's WebAssembly half, the one
// recipe for it: `go generate ./web` runs it into web/static, and
// TestWasmUpToDate runs it into a temporary folder and compares.
//
//	go run ./web/internal/genwasm -o DIR
//
// It writes three files into DIR: lanft.wasm (web/wasm for js/wasm,
// stripped and without a build id, so that the same code and Go release
// give the same bytes), wasm_exec.js (the JavaScript glue of the same Go
// release) and lanft.wasm.go-version (that release, for instance
// "go1.26.8": another release builds other bytes, so the freshness test
// runs only on this one).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// pkg is what the page runs: lanft's identity, CPace and manifest code.
const pkg = "github.com/lanft/lanft/web/wasm"

func main() {
	out := flag.String("o", "", "write lanft.wasm, wasm_exec.js and lanft.wasm.go-version into `DIR`")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./web/internal/genwasm -o DIR")
		os.Exit(2)
	}
	if err := generate(context.Background(), *out); err != nil {
		fmt.Fprintln(os.Stderr, "genwasm:", err)
		os.Exit(1)
	}
}

// generate builds the three files into dir with the go command on PATH
// (under `go generate` and `go test`, the release running them).
func generate(ctx context.Context, dir string) error {
	env, err := goEnv(ctx, "GOVERSION", "GOROOT")
	if err != nil {
		return err
	}
	version, goroot := env[0], env[1]
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w -buildid=",
		"-o", filepath.Join(dir, "lanft.wasm"), pkg)
	// Only GOOS and GOARCH: settings of the environment that change the
	// bytes (GOFLAGS, GOWASM, GOEXPERIMENT) are cleared.
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "GOFLAGS=", "GOWASM=", "GOEXPERIMENT=")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s for js/wasm: %w\n%s", pkg, err, b)
	}
	glue, err := os.ReadFile(filepath.Join(goroot, "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		return fmt.Errorf("read Go's wasm_exec.js: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wasm_exec.js"), glue, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "lanft.wasm.go-version"), []byte(version+"\n"), 0o644)
}

// goEnv asks the go command for the values of the named variables.
func goEnv(ctx context.Context, names ...string) ([]string, error) {
	b, err := exec.CommandContext(ctx, "go", append([]string{"env"}, names...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go env %s: %w", strings.Join(names, " "), err)
	}
	vals := strings.Split(string(bytes.TrimRight(b, "\n")), "\n")
	if len(vals) != len(names) {
		return nil, fmt.Errorf("go env %s printed %q", strings.Join(names, " "), b)
	}
	return vals, nil
}
