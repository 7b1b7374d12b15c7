package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Keys hold any room and folded name (the default room is "", names may be
// any Unicode) and still are valid JetStream key-value keys.
func TestKVKeyRoundTrip(t *testing.T) {
	for _, tt := range []struct{ room, key string }{
		{"", "alice"}, {"red", "josé"}, {"a-b_c", "日本 語.*>"}, {"x", strings.Repeat("ß", 64)},
	} {
		k := kvKey(tt.room, tt.key)
		for _, r := range k {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=.", r)) {
				t.Errorf("kvKey(%q, %q) = %q holds %q, not valid in a key", tt.room, tt.key, k, r)
			}
		}
		room, key, ok := parseKVKey(k)
		if !ok || room != tt.room || key != tt.key {
			t.Errorf("parseKVKey(%q) = %q, %q, %v; want %q, %q", k, room, key, ok, tt.room, tt.key)
		}
	}
	for _, bad := range []string{"n.node", "u.rxx!.kyy", "u.a.b", "u.r.k.x"} {
		if _, _, ok := parseKVKey(bad); ok {
			t.Errorf("parseKVKey(%q) accepted", bad)
		}
	}
}

func TestRedact(t *testing.T) {
	got := redact("nats://lanft:s3cret@a:4222, nats://b:4222")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "a:4222") || !strings.Contains(got, "nats://b:4222") {
		t.Errorf("redact = %q", got)
	}
}

func TestConfigChecks(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a connection: no error")
	}
	// A cut-off node must stop serving before the others call it dead.
	if _, err := New(Config{Conn: &nats.Conn{}, LeaseTTL: 5 * time.Second, DeadAfter: 5 * time.Second}); err == nil {
		t.Error("New with DeadAfter = LeaseTTL: no error")
	}
}
