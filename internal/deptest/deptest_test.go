package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/lanft/lanft"

// rule forbids the packages From (and those below them) to depend, even
// through others, on the packages To (and those below them).
type rule struct {
	Why      string
	From, To []string
}

// rules are the import rules of the whole codebase (STYLE.md, issue #18).
func rules() []rule {
	var rs []rule
	rs = append(rs, rule{
		Why:  "the protocol packages stand on their own: nothing of internal/",
		From: []string{"signal", "transfer", "rtc", "discovery", "names"},
		To:   []string{"internal"},
	}, rule{
		Why:  "the peer client does not serve: neither the page nor the host",
		From: []string{"internal/node"},
		To:   []string{"web", "internal/host"},
	})
	for _, p := range []string{"signal", "rtc", "transfer"} {
		rs = append(rs, rule{
			Why:  "signal, rtc and transfer know nothing of each other",
			From: []string{p},
			To:   slices.DeleteFunc([]string{"signal", "rtc", "transfer"}, func(q string) bool { return q == p }),
		})
	}
	return rs
}

// under reports whether package p (relative to the module) is dir or
// below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func matches(p string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool { return under(p, d) })
}

// violations checks the import graph (package -> its direct imports, all
// relative to the module; other modules' packages left out) against rs.
// Each violation is "FROM -> TO" with the chain of imports that makes it.
func violations(graph map[string][]string, rs []rule) map[string]string {
	out := make(map[string]string)
	for _, r := range rs {
		for from := range graph {
			if !matches(from, r.From) {
				continue
			}
			for to, chain := range reach(graph, from) {
				if matches(to, r.To) {
					out[from+" -> "+to] = strings.Join(chain, " -> ") + ": " + r.Why
				}
			}
		}
	}
	return out
}

// reach is every package from depends on, each with one shortest chain
// of imports from it.
func reach(graph map[string][]string, from string) map[string][]string {
	chains := map[string][]string{from: {from}}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range graph[p] {
			if _, seen := chains[q]; !seen {
				chains[q] = append(slices.Clone(chains[p]), q)
				queue = append(queue, q)
			}
		}
	}
	delete(chains, from)
	return chains
}

// importGraph lists the module's packages (not their tests: a test may
// use internal/netns) with `go list`, for the platforms lanft builds for.
func importGraph(t *testing.T, goos, goarch string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Error", module+"/...")
	cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	graph := make(map[string][]string)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Error      *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil && !strings.Contains(p.Error.Err, "build constraints exclude all Go files") {
			t.Fatalf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		rel, ok := relative(p.ImportPath)
		if !ok {
			continue
		}
		graph[rel] = []string{}
		for _, imp := range p.Imports {
			if r, ok := relative(imp); ok {
				graph[rel] = append(graph[rel], r)
			}
		}
	}
	if len(graph) < 10 {
		t.Fatalf("go list found %d packages of %s: %v", len(graph), module, graph)
	}
	return graph
}

// relative is p without the module's prefix; false for another module's.
func relative(p string) (string, bool) {
	if p == module {
		return ".", true
	}
	return strings.CutPrefix(p, module+"/")
}

// TestImports: no import runs the wrong way, on Linux, macOS, Windows
// and in the browser's WebAssembly.
func TestImports(t *testing.T) {
	for _, plat := range [][2]string{{"linux", "amd64"}, {"darwin", "arm64"}, {"windows", "amd64"}, {"js", "wasm"}} {
		t.Run(plat[0]+"/"+plat[1], func(t *testing.T) {
			for _, how := range violations(importGraph(t, plat[0], plat[1]), rules()) {
				t.Errorf("forbidden import %s", how)
			}
		})
	}
}

// TestViolations: the checker finds a forbidden dependency however deep,
// with the chain that makes it, and leaves allowed ones alone.
func TestViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		graph map[string][]string
		want  map[string]string // violation -> its chain, without the why
	}{
		{name: "clean", graph: map[string][]string{
			"signal": {"names"}, "names": {}, "internal/node": {"signal", "rtc"}, "rtc": {},
			"internal/host": {"web", "signal"}, "web": {"signal"},
		}},
		{name: "direct", graph: map[string][]string{"signal": {"internal/cluster"}, "internal/cluster": {}},
			want: map[string]string{"signal -> internal/cluster": "signal -> internal/cluster"}},
		{name: "through another package", graph: map[string][]string{
			"internal/node": {"internal/direct"}, "internal/direct": {"web/qr"}, "web/qr": {},
		}, want: map[string]string{"internal/node -> web/qr": "internal/node -> internal/direct -> web/qr"}},
		{name: "siblings", graph: map[string][]string{"rtc": {"transfer"}, "transfer": {}},
			want: map[string]string{"rtc -> transfer": "rtc -> transfer"}},
		{name: "a name that only starts like a rule's", graph: map[string][]string{"signalx": {"internal/a"}, "internal/a": {}, "rtc": {"transferx"}, "transferx": {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := violations(tc.graph, rules())
			if len(got) != len(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			for v, chain := range tc.want {
				if how, ok := got[v]; !ok || !strings.HasPrefix(how, chain+": ") {
					t.Errorf("%s: got %q, want the chain %q", v, how, chain)
				}
			}
		})
	}
}
