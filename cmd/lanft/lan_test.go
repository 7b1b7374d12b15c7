package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// These tests run lanft on a simulated LAN of network namespaces (root;
// see internal/netns): no --signal, so the instances find each other over
// mDNS and log in to the host they elect. All traffic stays inside the
// namespaces the test makes.

// onHost runs lanft inside host i of lan with its own config folder.
func onHost(t *testing.T, lan *netns.LAN, i int, args ...string) *lanfttest.Proc {
	argv := append([]string{"ip", "netns", "exec", lan.Namespace(i), lanftBin, "--config-dir", t.TempDir()}, args...)
	return lanfttest.Start(t, argv...)
}

func hostURL(lan *netns.LAN, i int) string { return "ws://" + lan.Addr(i).String() + ":" }

func TestLANShareReceiveWithoutSignal(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	src := filepath.Join(t.TempDir(), "lan.bin")
	lanfttest.WriteRandom(t, src, 8<<20)
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)

	out := t.TempDir()
	recv := onHost(t, lan, 2, "receive", "--interface", lan.Iface(2), "--name", "beta", "--yes", "--json", "--out", out)
	recv.WaitLine(t, `"event":"done"`, 60*time.Second)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "lan.bin"))
	lanfttest.NoPartFiles(t, out)
}

// TestLANHostKilledMidTransfer: a transfer between hosts 1 and 2 while
// host 3 is the signaling host; host 3 is killed mid-way; the transfer,
// peer to peer, completes.
func TestLANHostKilledMidTransfer(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	dir := t.TempDir()
	tiny := filepath.Join(dir, "tiny.txt")
	os.WriteFile(tiny, []byte("host"), 0o644)
	host := onHost(t, lan, 3, "share", "--interface", lan.Iface(3), "--name", "gamma", "--json", tiny)
	online := host.WaitLine(t, `"event":"online"`, 20*time.Second)
	if !strings.Contains(online.Text, hostURL(lan, 3)) {
		t.Fatalf("the first instance should host: %s", online.Text)
	}

	src := filepath.Join(dir, "big.bin")
	lanfttest.WriteRandom(t, src, 256<<20)
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	online = share.WaitLine(t, `"event":"online"`, 60*time.Second)
	if !strings.Contains(online.Text, hostURL(lan, 3)) {
		t.Fatalf("alpha logged in elsewhere than the host on h3: %s", online.Text)
	}
	out := t.TempDir()
	recv := onHost(t, lan, 2, "receive", "--interface", lan.Iface(2), "--from", "alpha", "--name", "beta", "--yes", "--json", "--out", out)
	recv.WaitLine(t, `"event":"progress"`, 60*time.Second)
	host.Kill()
	t.Log("killed the signaling host mid-transfer")
	recv.WaitLine(t, `"event":"done"`, 3*time.Minute)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "big.bin"))
}

// TestLANShareSurvivesHostFailover: the host dies after a share started;
// the sharer logs in to the newly elected host and is still received.
func TestLANShareSurvivesHostFailover(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	dir := t.TempDir()
	tiny := filepath.Join(dir, "tiny.txt")
	os.WriteFile(tiny, []byte("host"), 0o644)
	host := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "first", "--json", tiny)
	host.WaitLine(t, `"event":"online"`, 20*time.Second)

	src := filepath.Join(dir, "doc.bin")
	lanfttest.WriteRandom(t, src, 1<<20)
	share := onHost(t, lan, 2, "share", "--interface", lan.Iface(2), "--name", "second", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)

	host.Kill()
	killed := time.Now()
	// The sharer notices, and logs in again at the new host.
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	t.Logf("sharer back online %v after the host was killed", time.Since(killed).Round(time.Millisecond))

	out := t.TempDir()
	recv := onHost(t, lan, 3, "receive", "--interface", lan.Iface(3), "--from", "second", "--name", "third", "--yes", "--json", "--out", out)
	recv.WaitLine(t, `"event":"done"`, 60*time.Second)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "doc.bin"))
}

// TestLANPeersShowsHostAndHowFound: `lanft peers` lists the others, the
// elected host, and that they were found over mDNS.
func TestLANPeersShowsHostAndHowFound(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	f := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(f, []byte("x"), 0o644)
	for i, name := range []string{"one", "two"} {
		p := onHost(t, lan, i+1, "share", "--interface", lan.Iface(i+1), "--name", name, "--json", f)
		p.WaitLine(t, `"event":"online"`, 20*time.Second)
	}
	stdout, stderr, code := lanfttest.Run(t, 30*time.Second, "ip", "netns", "exec", lan.Namespace(3), lanftBin,
		"--config-dir", t.TempDir(), "peers", "--interface", lan.Iface(3), "--name", "three")
	if code != 0 {
		t.Fatalf("peers exited %d: %s", code, stderr)
	}
	for _, want := range []string{"one", "two", "mdns", fmt.Sprintf("host: ws://%s:", lan.Addr(1)), "elected host"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("peers output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestLANFallsBackToRemoteSignal: alone on its LAN, an instance with
// --fallback-signal says so and uses the remote host, where a peer that
// is not on the LAN receives its share.
func TestLANFallsBackToRemoteSignal(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	// The "remote" host: a standalone signaling host on host 2's address.
	sig := lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(2), lanftBin, "signal", "--listen", lan.Addr(2).String()+":0")
	url := strings.TrimSpace(sig.WaitLine(t, "ws://", 10*time.Second).Text)

	src := filepath.Join(t.TempDir(), "far.txt")
	os.WriteFile(src, []byte("over the fallback"), 0o644)
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "lonely", "--fallback-signal", url, "--json", src)
	share.WaitLine(t, "no other lanft instance found on the LAN; using "+url, 20*time.Second)
	online := share.WaitLine(t, `"event":"online"`, 20*time.Second)
	if !strings.Contains(online.Text, url) {
		t.Fatalf("online at another host than the fallback: %s", online.Text)
	}
	out := t.TempDir()
	stdout, stderr, code := lanfttest.Run(t, time.Minute, "ip", "netns", "exec", lan.Namespace(2), lanftBin, "--config-dir", t.TempDir(),
		"receive", "--signal", url, "--interface", lan.Iface(2), "--from", "lonely", "--yes", "--json", "--out", out)
	if code != 0 {
		t.Fatalf("receive exited %d: %s\n%s", code, stderr, stdout)
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "far.txt"))
}
