package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/identity"
	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// TestLANImpostorsOfPinnedNames is issue #24's attack on a LAN of three
// namespace hosts, found over mDNS (no --signal): alice (host 1) shares
// with --to bob, and the real bob (host 2) receives once, so they pin each
// other. Eve, on host 3 with her own device key, then tries both roles
// under spellings of their names:
//
//  1. she receives as "Bob": alice refuses her, saying on her side which
//     pinned name and devices differ, and eve is told why; nothing is
//     written into eve's --out;
//  2. alice stops, eve shares as "Alice" (and so hosts the signaling
//     herself), and bob's usual `receive --from alice` refuses her, with
//     the reason on both sides and nothing written.
func TestLANImpostorsOfPinnedNames(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	cfgAlice, cfgBob, cfgEve := t.TempDir(), t.TempDir(), t.TempDir()
	// lanft as person p on host i, with p's own config folder (device key, pins).
	as := func(i int, cfg string, args ...string) []string {
		return append([]string{"ip", "netns", "exec", lan.Namespace(i), lanftBin, "--config-dir", cfg}, args...)
	}
	src := filepath.Join(t.TempDir(), "for-bob.txt")
	if err := os.WriteFile(src, []byte("only for bob\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	alice := lanfttest.Start(t, as(1, cfgAlice, "share", "--interface", lan.Iface(1), "--name", "alice", "--to", "bob", src)...)
	waitStderr(t, alice, "sharing 1 file(s)", 30*time.Second)

	out := t.TempDir()
	if _, stderr, code := lanfttest.Run(t, 60*time.Second, as(2, cfgBob, "receive", "--interface", lan.Iface(2),
		"--name", "bob", "--from", "alice", "--yes", "--out", out)...); code != 0 {
		t.Fatalf("bob's first receive exited %d:\n%s", code, stderr)
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "for-bob.txt"))
	waitStderr(t, alice, "bob: sent", 10*time.Second)
	devAlice, devBob, devEve := deviceOf(t, cfgAlice), deviceOf(t, cfgBob), deviceOf(t, cfgEve)

	t.Run("receiver", func(t *testing.T) {
		out := t.TempDir()
		begin := time.Now()
		_, stderr, code := lanfttest.Run(t, 60*time.Second, as(3, cfgEve, "receive", "--interface", lan.Iface(3),
			"--name", "Bob", "--from", "alice", "--yes", "--out", out)...)
		if code != 1 {
			t.Fatalf("eve as Bob: exit code %d, want 1:\n%s", code, stderr)
		}
		said := lastLine(t, stderr, "refused by the sharer: alice knows the name Bob from another device")
		t.Logf("eve: %s (after %v)", said, time.Since(begin).Round(time.Millisecond))
		emptyFolder(t, out)
		want := `Bob: refused: device key changed: "Bob", another spelling of the pinned name "bob", used device ` +
			devBob + " before and now presents " + devEve
		waitStderr(t, alice, want, 10*time.Second)
		t.Logf("alice: %s", want)
	})

	alice.Interrupt()
	t.Run("sharer", func(t *testing.T) {
		evesSrc := filepath.Join(t.TempDir(), "for-bob.txt")
		if err := os.WriteFile(evesSrc, []byte("from eve\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		eve := lanfttest.Start(t, as(3, cfgEve, "share", "--interface", lan.Iface(3), "--name", "Alice", evesSrc)...)
		waitStderr(t, eve, "sharing 1 file(s)", 30*time.Second)
		out := t.TempDir()
		begin := time.Now()
		_, stderr, code := lanfttest.Run(t, 60*time.Second, as(2, cfgBob, "receive", "--interface", lan.Iface(2),
			"--name", "bob", "--from", "alice", "--yes", "--out", out)...)
		if code != 1 {
			t.Fatalf("bob from eve as Alice: exit code %d, want 1:\n%s", code, stderr)
		}
		said := lastLine(t, stderr, `"Alice", another spelling of the pinned name "alice", used device `+devAlice+" before and now presents "+devEve)
		t.Logf("bob: %s (after %v)", said, time.Since(begin).Round(time.Millisecond))
		if strings.Contains(stderr, "first contact") {
			t.Errorf("bob treated eve as a first contact:\n%s", stderr)
		}
		emptyFolder(t, out)
		want := "bob: refused by the receiver: bob knows the name Alice from another device"
		waitStderr(t, eve, want, 10*time.Second)
		t.Logf("eve: %s", want)
	})
}

// deviceOf is the device id kept in a config folder.
func deviceOf(t *testing.T, cfg string) string {
	t.Helper()
	id, err := identity.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return id.DeviceID()
}
