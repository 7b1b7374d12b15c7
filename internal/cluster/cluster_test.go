package cluster

import (
	"fmt"
	"net"
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

// Embedded servers with one route secret form a cluster; a server with
// another secret is refused.
func TestEmbeddedRouteSecret(t *testing.T) {
	ports := make([]string, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().String()
		l.Close()
	}
	start := func(i int, secret string, route int) *Embedded {
		t.Helper()
		e, err := StartEmbedded(EmbeddedConfig{Name: fmt.Sprint(i), StoreDir: t.TempDir(), ClusterAddr: ports[i],
			Routes: []string{"nats://" + ports[route]}, RouteSecret: secret})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	a := start(0, "right", 1)
	b := start(1, "right", 0)
	c := start(2, "wrong", 0)
	deadline := time.Now().Add(10 * time.Second)
	for b.srv.NumRoutes() == 0 || a.srv.NumRoutes() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("two servers with one secret did not route to each other")
		}
		time.Sleep(20 * time.Millisecond) // polling the servers' route count
	}
	// c retries about once a second: give it a few attempts.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond) // c's attempts are timer-driven
	}
	if n := c.srv.NumRoutes(); n != 0 {
		t.Errorf("a server with the wrong secret has %d routes", n)
	}
}
