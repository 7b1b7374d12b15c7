package release

import (
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// root is the repository's top folder.
func root(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the test's source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// goreleaser finds the goreleaser binary: on PATH, else in $(go env
// GOPATH)/bin where `go install` puts it. Without one the test is skipped,
// except under CI=true, where it fails.
func goreleaser(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("goreleaser"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "goreleaser")
			if runtime.GOOS == "windows" {
				p += ".exe"
			}
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("goreleaser is not installed, and CI=true: run .ci/install-goreleaser first")
	}
	t.Skip("goreleaser is not installed (install it with .ci/install-goreleaser); skipping the release build test")
	return ""
}

// run runs goreleaser in the repository and fails the test if it fails.
func run(t *testing.T, ctx context.Context, env []string, bin string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = root(t)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("goreleaser %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestGoreleaserCheck(t *testing.T) {
	bin := goreleaser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run(t, ctx, os.Environ(), bin, "check")
}

// TestSnapshotBuildVersion builds a snapshot for this machine with the
// release configuration and checks what `lanft --version` says.
func TestSnapshotBuildVersion(t *testing.T) {
	bin := goreleaser(t)
	top := root(t)

	// The same configuration, building into a folder of the test's own,
	// so that the test never cleans the repository's dist/.
	conf, err := os.ReadFile(filepath.Join(top, "goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^dist:`).Match(conf) {
		t.Fatal("goreleaser.yaml sets dist:, which this test overrides; keep the default (dist/)")
	}
	tmp := t.TempDir()
	dist := filepath.Join(tmp, "dist")
	testConf := filepath.Join(tmp, "goreleaser.yaml")
	if err := os.WriteFile(testConf, append(conf, []byte("\ndist: "+dist+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}

	env := os.Environ()
	// goreleaser reads the commit from git, but in snapshot mode falls back
	// to "none" for everything when the repository has no remote: give it
	// one, for its own git commands only.
	if err := exec.Command("git", "-C", top, "ls-remote", "--get-url").Run(); err != nil {
		env = append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=remote.origin.url",
			"GIT_CONFIG_VALUE_0=https://github.com/lanft/lanft.git")
	}
	head, err := exec.Command("git", "-C", top, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	commit := strings.TrimSpace(string(head))

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	run(t, ctx, env, bin, "build", "--snapshot", "--clean", "--single-target", "--config", testConf)

	var meta struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
	}
	readJSON(t, filepath.Join(dist, "metadata.json"), &meta)
	if !strings.Contains(meta.Version, "SNAPSHOT") {
		t.Errorf("metadata version %q, want a snapshot version", meta.Version)
	}
	if meta.Commit != commit {
		t.Errorf("metadata commit %q, want HEAD %q", meta.Commit, commit)
	}

	var artifacts []struct {
		Path   string `json:"path"`
		Type   string `json:"type"`
		Goos   string `json:"goos"`
		Goarch string `json:"goarch"`
	}
	readJSON(t, filepath.Join(dist, "artifacts.json"), &artifacts)
	var lanft string
	for _, a := range artifacts {
		if a.Type == "Binary" && a.Goos == runtime.GOOS && a.Goarch == runtime.GOARCH {
			lanft = a.Path
			if !filepath.IsAbs(lanft) {
				lanft = filepath.Join(top, lanft)
			}
		}
	}
	if lanft == "" {
		t.Fatalf("no %s/%s binary among the artifacts: %+v", runtime.GOOS, runtime.GOARCH, artifacts)
	}

	out, err := exec.Command(lanft, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", lanft, err, out)
	}
	got := strings.TrimSpace(string(out))
	t.Logf("%s --version: %s", lanft, got)
	want := regexp.MustCompile(`^lanft version (\S+) \(commit ([0-9a-f]{40}), built (\d{4}-\d\d-\d\dT\S+)\)$`)
	m := want.FindStringSubmatch(got)
	switch {
	case m == nil:
		t.Errorf("--version printed %q, want \"lanft version VERSION (commit SHA, built DATE)\"", got)
	case m[1] != meta.Version:
		t.Errorf("--version shows version %q, want the snapshot version %q", m[1], meta.Version)
	case m[2] != commit:
		t.Errorf("--version shows commit %q, want HEAD %q", m[2], commit)
	}

	if runtime.GOOS == "linux" {
		f, err := elf.Open(lanft)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the release binary is dynamically linked (has an ELF interpreter); want CGO_ENABLED=0")
			}
		}
		if f.Section(".symtab") != nil {
			t.Error("the release binary has a symbol table; want it stripped (-s -w)")
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
