package node

import (
	"testing"
	"time"
)

// TestTookText: a done line gives the time and rate only when bytes moved
// (a receiver that had every file moved none: "in 0s (0 B/s)" says nothing).
func TestTookText(t *testing.T) {
	for _, tt := range []struct {
		moved int64
		took  time.Duration
		want  string
	}{
		{0, 30 * time.Millisecond, ""},
		{3 << 20, time.Second, "in 1s (3.0 MiB/s)"},
	} {
		if got := tookText(tt.moved, tt.took); got != tt.want {
			t.Errorf("tookText(%d, %v) = %q, want %q", tt.moved, tt.took, got, tt.want)
		}
	}
}
