package pagehttp

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestMain fails the run if a goroutine of this package outlives the tests:
// Server.Close waits for its listeners and requests, and the tests close
// every Server they make.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaks := leakedGoroutines(); leaks != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n%s", leaks)
			code = 1
		}
	}
	os.Exit(code)
}

func leakedGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaks strings.Builder
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "lanft/internal/pagehttp.") && !strings.Contains(g, "pagehttp.leakedGoroutines") && !strings.Contains(g, "pagehttp.TestMain") {
			leaks.WriteString(g + "\n\n")
		}
	}
	return leaks.String()
}
