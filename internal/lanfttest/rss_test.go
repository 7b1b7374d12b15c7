package lanfttest

import (
	"runtime"
	"testing"
)

// A child's peak RSS is its own, not this test binary's: with 128 MiB
// held here, sleep reports a few MiB, and dd with a 96 MiB buffer about
// that.
func TestMaxRSSIsTheChilds(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc (Linux)")
	}
	hog := make([]byte, 128<<20)
	for i := 0; i < len(hog); i += 4096 {
		hog[i] = 1
	}
	small := Start(t, "sleep", "0.3")
	big := Start(t, "dd", "if=/dev/zero", "of=/dev/null", "bs=96M", "count=20")
	if c := small.ExitCode(); c != 0 {
		t.Fatalf("sleep exited %d", c)
	}
	if c := big.ExitCode(); c != 0 {
		t.Fatalf("dd exited %d: %s", c, big.Stderr())
	}
	runtime.KeepAlive(hog)
	if got := small.MaxRSS(); got <= 0 || got > 32<<20 {
		t.Errorf("sleep's peak RSS %d MiB, want a few (this binary holds 128)", got>>20)
	}
	if got := big.MaxRSS(); got < 90<<20 || got > 160<<20 {
		t.Errorf("dd's peak RSS %d MiB, want about its 96 MiB buffer", got>>20)
	}
	t.Logf("peak RSS: sleep %d KiB, dd %d MiB", small.MaxRSS()>>10, big.MaxRSS()>>20)
}
