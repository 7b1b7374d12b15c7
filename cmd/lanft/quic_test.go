package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// Two home NATs: ICE punches through, and the two CLIs then punch a fresh
// UDP pair and move the bytes over QUIC (internal/quicpath), not the data
// channel.
func TestNATTwoHomesTakeQUIC(t *testing.T) {
	inet := netns.NewInternet(t, netns.HomeNAT, netns.HomeNAT)
	url := startInternetSignal(t, inet)
	path, took := transferAcross(t, inet, url, 16<<20, "--log-level", "info")
	if path != "quic" {
		t.Fatalf("path %q, want quic (a hole-punched UDP pair between two home NATs)", path)
	}
	t.Logf("16 MiB over QUIC between two home NATs: %.1f MB/s", float64(16<<20)/took.Seconds()/1e6)
}

// A symmetric NAT on one side: no pair can be punched (ICE's route goes
// through TURN), so no QUIC is tried and the bytes take the host's TCP
// relay between the two CLIs; with --no-tcp-relay, the data channel
// through TURN. Both times the receiver's log says why there is no QUIC.
func TestNATSymmetricFallsBackFromQUIC(t *testing.T) {
	inet := netns.NewInternet(t, netns.SymmetricNAT, netns.HomeNAT)
	for _, tt := range []struct {
		name  string
		extra []string
		want  string
	}{{"tcp relay", nil, "tcp-relay"}, {"turn", []string{"--no-tcp-relay"}, "relay"}} {
		t.Run(tt.name, func(t *testing.T) {
			url := startInternetSignal(t, inet, tt.extra...)
			src := filepath.Join(t.TempDir(), "sym.bin")
			lanfttest.WriteRandom(t, src, 4<<20)
			share := inNS(t, inet.Peer(1), "share", "--signal", url, "--interface", "h0", "--name", "home1", "--json", src)
			share.WaitLine(t, `"event":"online"`, 20*time.Second)
			out := t.TempDir()
			recv := inNS(t, inet.Peer(2), "--log-level", "info", "receive", "--signal", url, "--interface", "h0", "--from", "home1",
				"--name", "home2", "--yes", "--json", "--out", out)
			peer := recv.WaitLine(t, `"event":"peer"`, 30*time.Second)
			recv.WaitLine(t, `"event":"done"`, 2*time.Minute)
			if path := pathOf(t, peer.Text); path != tt.want {
				t.Fatalf("path %q, want %s (no hole-punched pair through a symmetric NAT)", path, tt.want)
			}
			lanfttest.SameFile(t, src, filepath.Join(out, "sym.bin"))
			why := quicWhy(recv.Stderr())
			if !strings.Contains(why, "no hole-punched QUIC path") || !strings.Contains(why, "not through NATs") {
				t.Errorf("receiver's log says %q about QUIC, want why there is none; stderr:\n%s", why, recv.Stderr())
			}
			t.Logf("%s: %s", tt.want, why)
		})
	}
}

// quicWhy is the receiver's log line about the QUIC path.
func quicWhy(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "QUIC") {
			return l
		}
	}
	return ""
}

// Two home NATs, but home 2's router drops the punch datagrams (as a NAT
// that maps per destination makes them miss): ICE's own pair still works,
// punching fails within its bound, and the bytes take the data channel
// through the NATs; the receiver says why.
func TestNATPunchBlockedFallsBackToTheDataChannel(t *testing.T) {
	inet := netns.NewInternet(t, netns.HomeNAT, netns.HomeNAT)
	r2 := strings.TrimSuffix(inet.Server(), "-srv") + "-r2"
	// A punch datagram is 21 bytes of UDP payload: UDP length 29.
	if out, err := exec.Command("ip", "netns", "exec", r2, "nft", "insert", "rule", "ip", "filter", "fw", "udp", "length", "29", "drop").CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	url := startInternetSignal(t, inet)
	src := filepath.Join(t.TempDir(), "blocked.bin")
	lanfttest.WriteRandom(t, src, 4<<20)
	share := inNS(t, inet.Peer(1), "share", "--signal", url, "--interface", "h0", "--name", "home1", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	out := t.TempDir()
	start := time.Now()
	recv := inNS(t, inet.Peer(2), "receive", "--signal", url, "--interface", "h0", "--from", "home1", "--name", "home2", "--yes", "--json", "--out", out)
	info := recv.WaitLine(t, `no hole-punched QUIC path`, 30*time.Second)
	peer := recv.WaitLine(t, `"event":"peer"`, 30*time.Second)
	recv.WaitLine(t, `"event":"done"`, time.Minute)
	if path := pathOf(t, peer.Text); path != "datachannel-nat" {
		t.Fatalf("path %q, want datachannel-nat once punching failed", path)
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "blocked.bin"))
	if !strings.Contains(info.Text, "punch datagrams never arrived") {
		t.Errorf("info %s, want it to say the punch datagrams never arrived", info.Text)
	}
	if took := peer.At.Sub(start); took > 15*time.Second {
		t.Errorf("connected after %v, want the fallback within seconds", took)
	}
	t.Logf("connected after %v: %s", peer.At.Sub(start).Round(time.Millisecond), info.Text)
}
