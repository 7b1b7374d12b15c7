package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// These tests put the signaling host (with STUN and TURN) on an "internet"
// namespace and each peer behind a router of its own with nftables NAT
// (internal/netns/nat.go), and run the real binary everywhere.

// inNS runs lanft in namespace ns with its own config folder.
func inNS(t *testing.T, ns string, args ...string) *lanfttest.Proc {
	return lanfttest.Start(t, append([]string{"ip", "netns", "exec", ns, lanftBin, "--config-dir", t.TempDir()}, args...)...)
}

// startInternetSignal runs `lanft signal` on the internet's server with
// STUN and TURN (plus extra flags) and returns the URL of a new room.
func startInternetSignal(t *testing.T, inet *netns.Internet, extra ...string) string {
	t.Helper()
	_, url := internetSignal(t, inet, extra...)
	return url
}

// peerEvent is the receiver's "peer" (connected) JSON event.
type peerEvent struct {
	Event string `json:"event"`
	Path  string `json:"path"`
}

// transferAcross shares a file of size bytes from home 1 and receives it
// at home 2 (recvArgs added), checks the bytes and returns the path the
// receiver reported and how long the receive took from connecting to done.
func transferAcross(t *testing.T, inet *netns.Internet, url string, size int64, recvArgs ...string) (string, time.Duration) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "across.bin")
	lanfttest.WriteRandom(t, src, size)
	share := inNS(t, inet.Peer(1), "share", "--signal", url, "--interface", "h0", "--name", "home1", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	out := t.TempDir()
	args := append([]string{"receive", "--signal", url, "--interface", "h0", "--from", "home1", "--name", "home2",
		"--yes", "--json", "--out", out}, recvArgs...)
	recv := inNS(t, inet.Peer(2), args...)
	line := recv.WaitLine(t, `"event":"peer"`, 30*time.Second)
	var ev peerEvent
	if err := json.Unmarshal([]byte(line.Text), &ev); err != nil {
		t.Fatalf("peer event %q: %v", line.Text, err)
	}
	done := recv.WaitLine(t, `"event":"done"`, 5*time.Minute)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "across.bin"))
	// The sharer saw the same path.
	sline := share.WaitLine(t, `"event":"peer"`, 10*time.Second)
	if !strings.Contains(sline.Text, `"path":"`+ev.Path+`"`) {
		t.Errorf("sharer's peer event %s, want path %q as the receiver's", sline.Text, ev.Path)
	}
	return ev.Path, done.At.Sub(line.At)
}

// Two home NATs (port-preserving, only established traffic back in): ICE
// punches through, without the relay. (By default the bytes then take
// QUIC on a pair punched the same way: TestNATTwoHomesTakeQUIC.)
func TestNATTwoHomesConnectDirectly(t *testing.T) {
	inet := netns.NewInternet(t, netns.HomeNAT, netns.HomeNAT)
	url := startInternetSignal(t, inet)
	path, _ := transferAcross(t, inet, url, 4<<20, "--path", "datachannel")
	if path != "datachannel-nat" {
		t.Fatalf("path %q, want datachannel-nat (server-reflexive or peer-reflexive pair, no relay)", path)
	}
}

// A symmetric NAT on one side: only the relay gets through. Between two
// lanft CLIs the bytes take the host's TCP relay (TestNATSymmetricUsesTheTCPRelay);
// a receiver that keeps to the data channel goes through TURN. The log
// shows the relay's throughput beside raw TCP from the same home to the
// server.
func TestNATSymmetricUsesTheRelay(t *testing.T) {
	inet := netns.NewInternet(t, netns.SymmetricNAT, netns.HomeNAT)
	url := startInternetSignal(t, inet, "--relay-rate", "0")
	const size = 64 << 20
	path, took := transferAcross(t, inet, url, size, "--path", "datachannel")
	if path != "relay" {
		t.Fatalf("path %q, want relay", path)
	}
	raw := rawTCP(t, inet, size)
	t.Logf("%d MiB through the TURN relay (symmetric NAT to home NAT, unshaped veths): %.1f MB/s; raw TCP from home 1 to the server: %.1f MB/s",
		size>>20, float64(size)/took.Seconds()/1e6, float64(size)/raw.Seconds()/1e6)
}

// A network that lets no UDP out: the peer there reaches the relay over
// TCP (TURN over TCP), the other peer over UDP.
func TestNATWithoutUDPUsesTURNOverTCP(t *testing.T) {
	inet := netns.NewInternet(t, netns.NoUDP, netns.HomeNAT)
	url := startInternetSignal(t, inet, "--no-tcp-relay")
	path, _ := transferAcross(t, inet, url, 4<<20)
	if path != "relay" {
		t.Fatalf("path %q, want relay", path)
	}
}

// rawTCP copies n bytes over TCP from home 1's peer to the server, through
// the NAT, and returns how long it took.
func rawTCP(t *testing.T, inet *netns.Internet, n int64) time.Duration {
	return rawTCPCopy(t, inet.Server(), inet.ServerAddr().String()+":0", inet.Peer(1), "", n)
}

// A symmetric NAT and a host without TURN: the receive fails within 20 s
// and says why.
func TestNATSymmetricWithoutTURNFailsClearly(t *testing.T) {
	inet := netns.NewInternet(t, netns.SymmetricNAT, netns.HomeNAT)
	url := startInternetSignal(t, inet, "--no-turn")
	src := filepath.Join(t.TempDir(), "never.bin")
	lanfttest.WriteRandom(t, src, 1<<20)
	share := inNS(t, inet.Peer(1), "share", "--signal", url, "--interface", "h0", "--name", "home1", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	start := time.Now()
	_, stderr, code := lanfttest.Run(t, time.Minute, "ip", "netns", "exec", inet.Peer(2), lanftBin, "--config-dir", t.TempDir(),
		"receive", "--signal", url, "--interface", "h0", "--from", "home1", "--name", "home2", "--yes", "--out", t.TempDir())
	took := time.Since(start)
	if code == 0 {
		t.Fatalf("receive succeeded through a symmetric NAT without a relay")
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "lanft: ") || !strings.Contains(last, "no TURN relay is offered") || !strings.Contains(last, "symmetric NAT") {
		t.Errorf("last line %q, want one line naming the missing relay and the NAT; stderr:\n%s", last, stderr)
	}
	if took > 20*time.Second {
		t.Errorf("failed after %v, want within 20 s", took.Round(time.Millisecond))
	}
	t.Logf("failed after %v: %s", took.Round(time.Millisecond), last)
}

// --path relay on an open network (one LAN, no NAT): the bytes go
// through the relay all the same; without it, they go directly.
func TestForcedRelayOnOpenNetwork(t *testing.T) {
	lan := netns.NewLAN(t, 3)
	sigAddr := lan.Addr(1).String()
	sig := lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(1), lanftBin, "--config-dir", t.TempDir(),
		"signal", "--listen", sigAddr+":0", "--public-addr", sigAddr, "--turn-port", "0")
	url := strings.TrimSpace(sig.WaitLine(t, "ws://", 10*time.Second).Text)
	src := filepath.Join(t.TempDir(), "open.bin")
	lanfttest.WriteRandom(t, src, 4<<20)
	share := lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(2), lanftBin, "--config-dir", t.TempDir(),
		"share", "--signal", url, "--interface", lan.Iface(2), "--name", "open", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	out := t.TempDir()
	recv := lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(3), lanftBin, "--config-dir", t.TempDir(),
		"receive", "--signal", url, "--interface", lan.Iface(3), "--from", "open", "--yes", "--json", "--out", out, "--path", "relay")
	line := recv.WaitLine(t, `"event":"peer"`, 30*time.Second)
	if !strings.Contains(line.Text, `"path":"tcp-relay"`) {
		t.Fatalf("peer event %s, want path tcp-relay (the host's TCP relay between two lanft CLIs)", line.Text)
	}
	recv.WaitLine(t, `"event":"done"`, time.Minute)
	lanfttest.SameFile(t, src, filepath.Join(out, "open.bin"))

	// The same LAN with --path datachannel: host candidates, no relay; with
	// auto (the default), the direct TCP path.
	for _, tt := range []struct{ mode, want string }{{"datachannel", "datachannel"}, {"auto", "tcp"}} {
		out = t.TempDir()
		recv = lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(3), lanftBin, "--config-dir", t.TempDir(),
			"receive", "--signal", url, "--interface", lan.Iface(3), "--from", "open", "--yes", "--json", "--out", out, "--path", tt.mode)
		line = recv.WaitLine(t, `"event":"peer"`, 30*time.Second)
		if !strings.Contains(line.Text, `"path":"`+tt.want+`"`) {
			t.Fatalf("--path %s: peer event %s, want path %s on an open LAN", tt.mode, line.Text, tt.want)
		}
		recv.WaitLine(t, `"event":"done"`, time.Minute)
		lanfttest.SameFile(t, src, filepath.Join(out, "open.bin"))
	}
}
