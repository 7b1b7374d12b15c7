package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// These tests show the direct TCP path (internal/direct) between two
// hosts of a namespace LAN: used when it can be, refused by a firewall and
// replaced by the data channel within 2 s, forced off by --path, and
// resumed after a kill. A standalone signaling host runs on the receiver's
// host, so that a firewall on the sharer's host leaves signaling alone.

// signalOn starts `lanft signal` on host i and returns its URL.
func signalOn(t *testing.T, lan *netns.LAN, i int) string {
	t.Helper()
	sig := lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(i), lanftBin, "signal", "--listen", lan.Addr(i).String()+":0")
	return strings.TrimSpace(sig.WaitLine(t, "ws://", 10*time.Second).Text)
}

// pathOf returns the "path" of a --json event line.
func pathOf(t *testing.T, line string) string {
	t.Helper()
	var e struct {
		Path string `json:"path"`
	}
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatalf("not a JSON event: %q", line)
	}
	return e.Path
}

func TestLANDirectPath(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	url := signalOn(t, lan, 2)
	src := filepath.Join(t.TempDir(), "direct.bin")
	lanfttest.WriteRandom(t, src, 32<<20)
	share := onHost(t, lan, 1, "share", "--signal", url, "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)

	// receive runs a receiver on host 2 with extra arguments and returns
	// the path of its "peer" event and the time from the verification of
	// the data channel to that event.
	// Each receiver has a name of its own: the sharer pins names to keys.
	n := 0
	receive := func(t *testing.T, env []string, extra ...string) (string, time.Duration) {
		t.Helper()
		n++
		out := t.TempDir()
		argv := append([]string{"ip", "netns", "exec", lan.Namespace(2), "env"}, env...)
		argv = append(argv, lanftBin, "--config-dir", t.TempDir(), "receive", "--signal", url, "--interface", lan.Iface(2),
			"--from", "alpha", "--name", fmt.Sprintf("beta%d", n), "--yes", "--json", "--out", out)
		recv := lanfttest.Start(t, append(argv, extra...)...)
		verified := recv.WaitLine(t, `"event":"verify"`, 30*time.Second)
		peer := recv.WaitLine(t, `"event":"peer"`, 30*time.Second)
		for _, l := range []string{recv.WaitLine(t, `"event":"progress"`, 30*time.Second).Text} {
			if got, want := pathOf(t, l), pathOf(t, peer.Text); got != want {
				t.Errorf("progress says path %q, peer event %q", got, want)
			}
		}
		recv.WaitLine(t, `"event":"done"`, 2*time.Minute)
		if code := recv.ExitCode(); code != 0 {
			t.Fatalf("receive exited %d: %s", code, recv.Stderr())
		}
		lanfttest.SameFile(t, src, filepath.Join(out, "direct.bin"))
		lanfttest.NoPartFiles(t, out)
		return pathOf(t, peer.Text), peer.At.Sub(verified.At)
	}

	t.Run("direct when it can", func(t *testing.T) {
		if path, _ := receive(t, nil); path != "tcp" {
			t.Fatalf("path %q, want tcp", path)
		}
	})
	t.Run("LANFT_PATH=datachannel forces the data channel", func(t *testing.T) {
		if path, _ := receive(t, []string{"LANFT_PATH=datachannel"}); path != "datachannel" {
			t.Fatalf("path %q, want datachannel", path)
		}
	})
	t.Run("--path datachannel forces the data channel", func(t *testing.T) {
		if path, _ := receive(t, nil, "--path", "datachannel"); path != "datachannel" {
			t.Fatalf("path %q, want datachannel", path)
		}
	})
	t.Run("a firewall on the sharer: the data channel within 2 s", func(t *testing.T) {
		// Drop new TCP connections to host 1 (its outgoing signaling
		// connection is established, and stays).
		nft := func(args ...string) {
			t.Helper()
			if out, err := lan.Command(context.Background(), 1, "nft", args...).CombinedOutput(); err != nil {
				t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		nft("add", "table", "inet", "lanftblock")
		nft("add", "chain", "inet", "lanftblock", "in", "{ type filter hook input priority 0; policy accept; }")
		nft("add", "rule", "inet", "lanftblock", "in", "meta", "l4proto", "tcp", "ct", "state", "new", "drop")
		defer nft("delete", "table", "inet", "lanftblock")
		path, took := receive(t, nil)
		if path != "datachannel" {
			t.Fatalf("path %q, want datachannel", path)
		}
		t.Logf("fell back to the data channel %v after the data channel was verified", took.Round(time.Millisecond))
		if took > 2*time.Second {
			t.Fatalf("fell back after %v, want within 2 s", took)
		}
	})
}

// TestLANDirectResume: a receive on the direct path killed at half
// resumes, again on the direct path, fetching only the missing part.
func TestLANDirectResume(t *testing.T) {
	const size = 64 << 20
	lan := netns.NewLAN(t, 2)
	for i := 1; i <= 2; i++ { // slow enough (12.5 MB/s) to kill it at half
		if out, err := lan.Command(context.Background(), i, "tc", "qdisc", "add", "dev", lan.Iface(i), "root",
			"tbf", "rate", "100mbit", "burst", "256kb", "latency", "20ms").CombinedOutput(); err != nil {
			t.Fatalf("shape the link: %v: %s", err, out)
		}
	}
	url := signalOn(t, lan, 2)
	src := filepath.Join(t.TempDir(), "large.bin")
	lanfttest.WriteRandom(t, src, size)
	share := onHost(t, lan, 1, "share", "--signal", url, "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)

	out, cfg := t.TempDir(), t.TempDir()
	args := []string{"ip", "netns", "exec", lan.Namespace(2), lanftBin, "--config-dir", cfg, "receive", "--signal", url,
		"--interface", lan.Iface(2), "--from", "alpha", "--yes", "--json", "--out", out}
	stdout := killAtHalfAndRerun(t, args, filepath.Join(out, "large.bin"), func(first *lanfttest.Proc) {
		if path := pathOf(t, first.WaitLine(t, `"event":"peer"`, 30*time.Second).Text); path != "tcp" {
			t.Fatalf("first run: path %q, want tcp", path)
		}
	})
	if !strings.Contains(stdout, `"path":"tcp"`) || strings.Contains(stdout, `"path":"datachannel"`) {
		t.Fatalf("the second run did not use the direct path:\n%s", stdout)
	}
	e := lastEvent(t, stdout)
	if e.Received+e.Skipped != size {
		t.Fatalf("received %d + skipped %d != %d", e.Received, e.Skipped, size)
	}
	if limit := int64(size/2 + size/10); e.Received > limit {
		t.Fatalf("re-received %d bytes after resuming, want at most %d (the missing half plus 10%%)", e.Received, limit)
	}
	t.Logf("resumed on the direct path: %d MiB kept, %d MiB fetched", e.Skipped>>20, e.Received>>20)
	lanfttest.SameFile(t, src, filepath.Join(out, "large.bin"))
	lanfttest.NoPartFiles(t, out)
}

// TestLANDirectNoticesAVanishedSharer: the sharer's host drops off the
// LAN in the middle of a transfer on the direct path. TCP alone would wait
// minutes; ICE, still checking the route beside it, notices within
// seconds, and the receiver starts retrying as it does on the data channel.
func TestLANDirectNoticesAVanishedSharer(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	for i := 1; i <= 2; i++ { // slow enough to be mid-transfer when the link goes
		if out, err := lan.Command(context.Background(), i, "tc", "qdisc", "add", "dev", lan.Iface(i), "root",
			"tbf", "rate", "50mbit", "burst", "256kb", "latency", "20ms").CombinedOutput(); err != nil {
			t.Fatalf("shape the link: %v: %s", err, out)
		}
	}
	url := signalOn(t, lan, 2)
	src := filepath.Join(t.TempDir(), "large.bin")
	lanfttest.WriteRandom(t, src, 64<<20)
	share := onHost(t, lan, 1, "share", "--signal", url, "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	recv := onHost(t, lan, 2, "receive", "--signal", url, "--interface", lan.Iface(2), "--from", "alpha", "--yes", "--json", "--out", t.TempDir())
	if path := pathOf(t, recv.WaitLine(t, `"event":"peer"`, 30*time.Second).Text); path != "tcp" {
		t.Fatalf("path %q, want tcp", path)
	}
	waitProgress(t, recv, 0.2)
	lan.Cut(1)
	cut := time.Now()
	recv.WaitLine(t, "trying again", 15*time.Second)
	t.Logf("the receiver noticed %v after the sharer's link went", time.Since(cut).Round(100*time.Millisecond))
}
