package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// Two symmetric NATs: no hole punching. The data channel that verifies
// the peers goes through TURN, and the bytes through the host's TCP relay,
// with TLS 1.3 end to end; the relay's counters show they went there. The
// server opened no TCP connection for it: both peers connected in.
func TestNATSymmetricUsesTheTCPRelay(t *testing.T) {
	inet := netns.NewInternet(t, netns.SymmetricNAT, netns.SymmetricNAT)
	connectsOut := netns.WatchConnectsOut(t, inet.Server())
	url := startInternetSignal(t, inet, "--metrics-token", "relaytest")
	const size = 16 << 20
	path, took := transferAcross(t, inet, url, size)
	if path != "tcp-relay" {
		t.Fatalf("path %q, want tcp-relay", path)
	}
	m := serverMetrics(t, inet, url, "relaytest")
	if m["lanft_tcp_relays_total"] != 1 || m["lanft_tcp_relay_bytes_total"] < size {
		t.Fatalf("relay metrics %v, want one relay that moved at least %d bytes", m, size)
	}
	if n := connectsOut(); n != 0 {
		t.Errorf("the server sent %d SYNs out: it opened connections, want none (the relay only accepts)", n)
	}
	// The watch sees a connection the server's namespace does open.
	netns.DoIn(inet.Server(), func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(inet.RouterAddr(1).String(), "9"), time.Second)
		if err == nil {
			c.Close()
		}
		return nil
	})
	if n := connectsOut(); n == 0 {
		t.Errorf("a dial from the server's namespace to home 1's router counted no SYN: the watch sees nothing")
	}
	t.Logf("%d MiB over the TCP relay between two symmetric NATs: %.1f MB/s (unshaped veths)", size>>20, float64(size)/took.Seconds()/1e6)
}

// serverMetrics reads the signaling host's /metrics from inside its
// namespace, with its bearer token: the plain lines, by name.
func serverMetrics(t *testing.T, inet *netns.Internet, wsURL, token string) map[string]float64 {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	var conn net.Conn
	// The connection is made inside the namespace (on this thread).
	if err := netns.DoIn(inet.Server(), func() (err error) { conn, err = net.Dial("tcp", u.Host); return err }); err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	err = func() error {
		req, _ := http.NewRequest("GET", "http://"+u.Host+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Close = true
		if err := req.Write(conn); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
				v, _ := strconv.ParseFloat(f[1], 64)
				out[f[0]] = v
			}
		}
		return sc.Err()
	}()
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return out
}

// isolate turns on client isolation for hosts on lan's switch, as an
// access point does: the bridge forwards nothing between two isolated
// ports, while each still reaches the others (a wired host).
func isolate(t *testing.T, lan *netns.LAN, hosts ...int) {
	t.Helper()
	sw := strings.TrimSuffix(lan.Namespace(1), "-h1") + "-sw"
	for _, i := range hosts {
		out, err := exec.Command("ip", "-n", sw, "link", "set", fmt.Sprintf("p%d", i), "type", "bridge_slave", "isolated", "on").CombinedOutput()
		if err != nil {
			t.Fatalf("isolate host %d: %v: %s", i, err, out)
		}
	}
}

// isolatedLAN is a LAN with a wired host 3 that runs a share of its own
// (first, so that it hosts; wiredArgs added) and two isolated hosts 1 and
// 2, host 1 sharing src as alpha once logged in to host 3.
func isolatedLAN(t *testing.T, src string, wiredArgs ...string) (*netns.LAN, *lanfttest.Proc, *lanfttest.Proc) {
	lan := netns.NewLAN(t, 3)
	isolate(t, lan, 1, 2)
	tiny := filepath.Join(t.TempDir(), "tiny.txt")
	os.WriteFile(tiny, []byte("wired"), 0o644)
	wired := onHost(t, lan, 3, append([]string{"share", "--interface", lan.Iface(3), "--name", "wired", "--json"}, append(wiredArgs, tiny)...)...)
	if online := wired.WaitLine(t, `"event":"online"`, 20*time.Second); !strings.Contains(online.Text, hostURL(lan, 3)) {
		t.Fatalf("the wired instance should host: %s", online.Text)
	}
	share := onHost(t, lan, 1, "share", "--interface", lan.Iface(1), "--name", "alpha", "--json", src)
	if online := share.WaitLine(t, `"event":"online"`, 60*time.Second); !strings.Contains(online.Text, hostURL(lan, 3)) {
		t.Fatalf("alpha logged in elsewhere than the wired host: %s", online.Text)
	}
	return lan, wired, share
}

// Client isolation: two hosts that cannot reach each other both reach a
// wired lanft, which relays (TURN for the data channel that verifies them,
// its TCP relay for the bytes) and says so; with --no-relay it refuses and
// both peers are told why.
func TestLANIsolatedPeersRelayThroughTheWiredHost(t *testing.T) {
	src := filepath.Join(t.TempDir(), "isolated.bin")
	const size = 64 << 20
	lanfttest.WriteRandom(t, src, size)
	t.Run("relayed", func(t *testing.T) {
		lan, wired, share := isolatedLAN(t, src)
		out := t.TempDir()
		cpu0 := wired.CPUSoFar()
		recv := onHost(t, lan, 2, "receive", "--interface", lan.Iface(2), "--from", "alpha", "--name", "beta", "--yes", "--json", "--out", out)
		peer := recv.WaitLine(t, `"event":"peer"`, 60*time.Second)
		if !strings.Contains(peer.Text, `"path":"lan-relay"`) {
			t.Fatalf("peer event %s, want path lan-relay", peer.Text)
		}
		done := recv.WaitLine(t, `"event":"done"`, 2*time.Minute)
		if code := recv.ExitCode(); code != 0 {
			t.Fatalf("receive exited %d: %s", code, recv.Stderr())
		}
		relayCPU := wired.CPUSoFar() - cpu0
		lanfttest.SameFile(t, src, filepath.Join(out, "isolated.bin"))
		if s := share.WaitLine(t, `"event":"peer"`, 10*time.Second); !strings.Contains(s.Text, `"path":"lan-relay"`) {
			t.Errorf("sharer's peer event %s, want path lan-relay", s.Text)
		}
		wired.WaitLine(t, "relaying a transfer between", 10*time.Second)
		relayed := float64(size) / done.At.Sub(peer.At).Seconds() / 1e6

		// The same file to the wired host itself, which alpha reaches:
		// the direct rate on this LAN, in the same run.
		out3 := t.TempDir()
		direct := onHost(t, lan, 3, "receive", "--interface", lan.Iface(3), "--from", "alpha", "--name", "gamma", "--yes", "--json", "--out", out3)
		dpeer := direct.WaitLine(t, `"event":"peer"`, 60*time.Second)
		ddone := direct.WaitLine(t, `"event":"done"`, 2*time.Minute)
		if code := direct.ExitCode(); code != 0 {
			t.Fatalf("direct receive exited %d: %s", code, direct.Stderr())
		}
		lanfttest.SameFile(t, src, filepath.Join(out3, "isolated.bin"))
		t.Logf("%d MiB between two isolated hosts through the wired host: %.1f MB/s, the relaying lanft's CPU %.2f s; the same file from alpha to the wired host (path %s): %.1f MB/s",
			size>>20, relayed, relayCPU.Seconds(), pathOf(t, dpeer.Text), float64(size)/ddone.At.Sub(dpeer.At).Seconds()/1e6)
	})
	t.Run("--no-relay", func(t *testing.T) {
		lan, _, share := isolatedLAN(t, src, "--no-relay")
		_, stderr, code := lanfttest.Run(t, time.Minute, "ip", "netns", "exec", lan.Namespace(2), lanftBin, "--config-dir", t.TempDir(),
			"receive", "--interface", lan.Iface(2), "--from", "alpha", "--name", "beta", "--yes", "--out", t.TempDir())
		if code == 0 {
			t.Fatal("receive succeeded between isolated hosts with the only relay refusing")
		}
		if !strings.Contains(stderr, "wired's lanft does not relay") {
			t.Errorf("receiver's error does not say the host refuses to relay:\n%s", stderr)
		}
		if l := share.WaitLine(t, `"event":"error"`, 30*time.Second); !strings.Contains(l.Text, "does not relay") {
			t.Errorf("sharer's error %s does not say the host refuses to relay", l.Text)
		}
	})
}

// A receive over the TCP relay killed at half resumes, again over the
// relay, fetching only the missing part. The server shapes each relay to
// 12 MB/s (--tcp-relay-rate), slow enough to kill it at half.
func TestNATTCPRelayResume(t *testing.T) {
	const size = 64 << 20
	inet := netns.NewInternet(t, netns.SymmetricNAT, netns.SymmetricNAT)
	url := startInternetSignal(t, inet, "--tcp-relay-rate", "12")
	src := filepath.Join(t.TempDir(), "resumed.bin")
	lanfttest.WriteRandom(t, src, size)
	share := inNS(t, inet.Peer(1), "share", "--signal", url, "--interface", "h0", "--name", "home1", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	out, cfg := t.TempDir(), t.TempDir()
	args := []string{"ip", "netns", "exec", inet.Peer(2), lanftBin, "--config-dir", cfg, "receive", "--signal", url,
		"--interface", "h0", "--from", "home1", "--name", "home2", "--yes", "--json", "--out", out}
	start := time.Now()
	stdout := killAtHalfAndRerun(t, args, filepath.Join(out, "resumed.bin"), func(first *lanfttest.Proc) {
		if path := pathOf(t, first.WaitLine(t, `"event":"peer"`, 30*time.Second).Text); path != "tcp-relay" {
			t.Fatalf("first run: path %q, want tcp-relay", path)
		}
	})
	if !strings.Contains(stdout, `"path":"tcp-relay"`) {
		t.Fatalf("the second run did not use the TCP relay:\n%s", stdout)
	}
	e := lastEvent(t, stdout)
	if e.Received+e.Skipped != size {
		t.Fatalf("received %d + skipped %d != %d", e.Received, e.Skipped, size)
	}
	if limit := int64(size/2 + size/10); e.Received > limit {
		t.Fatalf("re-received %d bytes after resuming, want at most %d (the missing half plus 10%%)", e.Received, limit)
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "resumed.bin"))
	lanfttest.NoPartFiles(t, out)
	t.Logf("resumed over the TCP relay: %d MiB kept, %d MiB fetched, %v in all at 12 MB/s", e.Skipped>>20, e.Received>>20, time.Since(start).Round(time.Millisecond))
}

// On a wss:// host the relay connection goes through TLS too, as an
// upgrade at the signaling port (what a reverse proxy passes).
func TestNATTCPRelayOverWSS(t *testing.T) {
	inet := netns.NewInternet(t, netns.SymmetricNAT, netns.SymmetricNAT)
	ca, cert, key := writeCA(t, t.TempDir(), net.IP(inet.ServerAddr().AsSlice()))
	sig := inNS(t, inet.Server(), "--log-level", "info", "signal", "--listen", inet.ServerAddr().String()+":0", "--public-addr", inet.ServerAddr().String(),
		"--turn-port", "0", "--tls-cert", cert, "--tls-key", key, "--new-room")
	sig.WaitLine(t, "wss://", 10*time.Second)
	url := strings.TrimSpace(sig.WaitLine(t, "wss://", 10*time.Second).Text)
	run := func(home int, args ...string) *lanfttest.Proc {
		return lanfttest.Start(t, append([]string{"ip", "netns", "exec", inet.Peer(home), "env", "SSL_CERT_FILE=" + ca, lanftBin, "--config-dir", t.TempDir()}, args...)...)
	}
	src := filepath.Join(t.TempDir(), "wss.bin")
	lanfttest.WriteRandom(t, src, 8<<20)
	share := run(1, "share", "--signal", url, "--interface", "h0", "--name", "home1", "--json", src)
	share.WaitLine(t, `"event":"online"`, 20*time.Second)
	out := t.TempDir()
	recv := run(2, "receive", "--signal", url, "--interface", "h0", "--from", "home1", "--name", "home2", "--yes", "--json", "--out", out)
	if path := pathOf(t, recv.WaitLine(t, `"event":"peer"`, 30*time.Second).Text); path != "tcp-relay" {
		t.Fatalf("path %q, want tcp-relay", path)
	}
	recv.WaitLine(t, `"event":"done"`, 2*time.Minute)
	if code := recv.ExitCode(); code != 0 {
		t.Fatalf("receive exited %d: %s", code, recv.Stderr())
	}
	lanfttest.SameFile(t, src, filepath.Join(out, "wss.bin"))
	if !strings.Contains(sig.Stderr(), "relay: relaying") {
		t.Errorf("the server did not log the relay:\n%s", sig.Stderr())
	}
}
