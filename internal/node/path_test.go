package node

import "testing"

func TestPathOfCandidateTypes(t *testing.T) {
	tests := []struct {
		local, remote string
		want          Path
	}{
		{"host", "host", PathDataChannel},
		{"host", "srflx", PathNAT},
		{"srflx", "srflx", PathNAT},
		{"prflx", "host", PathNAT},
		{"host", "prflx", PathNAT},
		{"relay", "host", PathRelay},
		{"srflx", "relay", PathRelay},
		{"relay", "relay", PathRelay},
	}
	for _, tt := range tests {
		if got := pathOf(tt.local, tt.remote); got != tt.want {
			t.Errorf("pathOf(%s, %s) = %q, want %q", tt.local, tt.remote, got, tt.want)
		}
	}
}
