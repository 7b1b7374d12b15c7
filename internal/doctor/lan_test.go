//go:build linux

package doctor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/doctor"
	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// These tests run the real `lanft doctor` inside network namespaces (see
// LAN-TESTING.md): its probes never reach the machine's real interfaces.

// doctorRun is one run of lanft doctor.
type doctorRun struct {
	stdout, stderr string
	code           int
	results        map[string]doctor.Result // by check name, from --json
}

// runDoctor runs `lanft doctor --json args...` in host i of lan.
func runDoctor(t *testing.T, bin string, lan *netns.LAN, i int, args ...string) doctorRun {
	t.Helper()
	argv := append([]string{"ip", "netns", "exec", lan.Namespace(i), bin, "doctor", "--json"}, args...)
	stdout, stderr, code := lanfttest.Run(t, 30*time.Second, argv...)
	run := doctorRun{stdout: stdout, stderr: stderr, code: code, results: map[string]doctor.Result{}}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r doctor.Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("doctor --json printed %q, not a JSON result: %v\nstderr: %s", line, err, stderr)
		}
		run.results[r.Check] = r
	}
	return run
}

// want checks one result's status and that its detail and fix hold the
// given parts.
func (d doctorRun) want(t *testing.T, check string, status doctor.Status, detail, fix string) {
	t.Helper()
	r, ok := d.results[check]
	if !ok {
		t.Errorf("no %q check; got:\n%s", check, d.stdout)
		return
	}
	if r.Status != status || !strings.Contains(r.Detail, detail) || !strings.Contains(r.Fix, fix) {
		t.Errorf("check %q: got %+v, want status %s, detail with %q, fix with %q", check, r, status, detail, fix)
	}
}

// wantCode checks the exit code, and that a failure says why on stderr.
func (d doctorRun) wantCode(t *testing.T, code int) {
	t.Helper()
	if d.code != code {
		t.Errorf("exit code %d, want %d; stdout:\n%s\nstderr:\n%s", d.code, code, d.stdout, d.stderr)
	}
	if code != 0 && !strings.Contains(d.stderr, "lanft: doctor:") {
		t.Errorf("stderr %q, want a lanft: doctor: line", d.stderr)
	}
}

func TestMain(m *testing.M) { os.Exit(lanfttest.Main(m)) }

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func TestDoctorInNamespaces(t *testing.T) {
	netns.Require(t)
	bin := lanfttest.Binary(t)

	t.Run("multicast works", func(t *testing.T) {
		lan := netns.NewLAN(t, 2)
		d := runDoctor(t, bin, lan, 1, "--interface", "v1")
		d.wantCode(t, 0)
		d.want(t, "interface v1", doctor.OK, lan.Addr(1).String(), "")
		d.want(t, "multicast on v1", doctor.OK, "its unicast answer came back", "")
		d.want(t, "mdns port", doctor.OK, "free", "")
		d.want(t, "ports on v1", doctor.OK, "TCP "+lan.Addr(1).String()+":", "")
		d.want(t, "subnet on v1", doctor.OK, "reaches "+lan.Prefix(1).Masked().String()+" over v1", "")
		d.want(t, "lanft on v1", doctor.OK, "no other lanft instance answers", "")
		if len(d.results) != 6 {
			t.Errorf("got %d checks, want 6:\n%s", len(d.results), d.stdout)
		}

		// The human form: one line a check.
		argv := []string{"ip", "netns", "exec", lan.Namespace(2), bin, "doctor", "--interface", "v2"}
		stdout, _, code := lanfttest.Run(t, 30*time.Second, argv...)
		if code != 0 || !strings.Contains(stdout, "ok    multicast on v2: ") || strings.Count(stdout, "\n") != 6 {
			t.Errorf("human output (exit %d):\n%s\nwant six lines, one of them \"ok    multicast on v2: ...\"", code, stdout)
		}
	})

	t.Run("default interfaces", func(t *testing.T) {
		lan := netns.NewLAN(t, 1)
		d := runDoctor(t, bin, lan, 1)
		d.wantCode(t, 0)
		d.want(t, "interfaces", doctor.OK, "using v1 (", "")
		d.want(t, "interfaces", doctor.OK, "skipped lo: loopback", "")
		d.want(t, "multicast on v1", doctor.OK, "its unicast answer came back", "")
	})

	// Discovery joins the group and sends its queries on named interfaces:
	// it needs no multicast route, in either direction, and doctor says
	// nothing about one.
	t.Run("no multicast route, discovery works", func(t *testing.T) {
		lan := netns.NewLAN(t, 2)
		for i := 1; i <= 2; i++ {
			ipCmd(t, "-n", lan.Namespace(i), "route", "del", "224.0.0.0/4", "dev", lan.Iface(i))
		}
		for i := 1; i <= 2; i++ {
			d := runDoctor(t, bin, lan, i)
			d.wantCode(t, 0)
			d.want(t, "multicast on "+lan.Iface(i), doctor.OK, "its unicast answer came back", "")
			for _, r := range d.results {
				if r.Status != doctor.OK || strings.Contains(r.Check+r.Detail, "route") {
					t.Errorf("host %d: %+v; want every check ok, none about a route", i, r)
				}
			}
		}
		share(t, bin, lan, 1, "alice")
		share(t, bin, lan, 2, "bob")
		if out := peers(t, bin, lan, 1, 20*time.Second); !strings.Contains(out, "bob") {
			t.Errorf("host 1 does not see bob:\n%s", out)
		}
		if out := peers(t, bin, lan, 2, 20*time.Second); !strings.Contains(out, "alice") {
			t.Errorf("host 2 does not see alice:\n%s", out)
		}
	})

	// A firewall that drops outgoing multicast stops discovery's queries:
	// mDNS sees nobody. Doctor warns and names the fix; lanft falls back to
	// probing the subnet, and finds the others that way.
	t.Run("outgoing multicast dropped, the fallback finds the others", func(t *testing.T) {
		requireNft(t)
		lan := netns.NewLAN(t, 2)
		for i := 1; i <= 2; i++ {
			ipCmd(t, "-n", lan.Namespace(i), "route", "del", "224.0.0.0/4", "dev", lan.Iface(i))
		}
		nft(t, lan, 1, "add table ip lanfttest")
		nft(t, lan, 1, "add chain ip lanfttest out { type filter hook output priority 0 ; }")
		nft(t, lan, 1, "add rule ip lanfttest out oifname v1 ip daddr 224.0.0.0/4 drop")

		d := runDoctor(t, bin, lan, 1, "--interface", "v1")
		d.wantCode(t, 0)
		d.want(t, "multicast on v1", doctor.Warn, "cannot send lanft's mDNS query", "allow UDP to 224.0.0.251 port 5353 out on v1")
		d.want(t, "multicast on v1", doctor.Warn, "falls back to probing its subnet", "")
		d.want(t, "interface v1", doctor.OK, "up, multicast", "")
		d = runDoctor(t, bin, lan, 1, "--interface", "v1", "--no-probe")
		d.wantCode(t, 1)
		d.want(t, "multicast on v1", doctor.Fail, "cannot send lanft's mDNS query", "allow UDP to 224.0.0.251 port 5353 out on v1")
		d = runDoctor(t, bin, lan, 2, "--interface", "v2")
		d.wantCode(t, 0)

		share(t, bin, lan, 2, "bob")
		d = runDoctor(t, bin, lan, 1, "--interface", "v1")
		d.want(t, "lanft on v1", doctor.Warn, "bob ("+lan.Addr(2).String()+")", "--peer "+lan.Addr(2).String())
		out := peers(t, bin, lan, 1, 8*time.Second)
		t.Logf("peers on host 1:\n%s", out)
		if !strings.Contains(out, "bob") {
			t.Errorf("host 1 does not see bob through the unicast fallback:\n%s", out)
		}

		// With --signal, discovery is not needed: a warning, and the
		// signaling host decides.
		sig := lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(2), bin, "--config-dir", t.TempDir(),
			"signal", "--listen", lan.Addr(2).String()+":0")
		url := strings.TrimSpace(sig.WaitLine(t, "ws://", 10*time.Second).Text)
		d = runDoctor(t, bin, lan, 1, "--interface", "v1", "--signal", url)
		d.wantCode(t, 0)
		d.want(t, "multicast on v1", doctor.Warn, "not used with --signal", "allow UDP")
		d.want(t, "signal "+url, doctor.OK, "answered the WebSocket handshake", "")
	})

	t.Run("interface without multicast", func(t *testing.T) {
		lan := netns.NewLAN(t, 1)
		ipCmd(t, "-n", lan.Namespace(1), "link", "set", "v1", "multicast", "off")
		d := runDoctor(t, bin, lan, 1, "--interface", "v1")
		d.wantCode(t, 1)
		d.want(t, "interface v1", doctor.Fail, "not multicast-capable", "sudo ip link set v1 multicast on")
		// Left out by default, with the reason.
		d = runDoctor(t, bin, lan, 1)
		d.wantCode(t, 1)
		d.want(t, "interfaces", doctor.Fail, "v1: not multicast-capable", "--interface")
	})

	t.Run("unknown interface and unreachable signal host", func(t *testing.T) {
		lan := netns.NewLAN(t, 2)
		url := "ws://" + lan.Addr(2).String() + ":9/ws" // nothing listens there
		d := runDoctor(t, bin, lan, 1, "--interface", "v1", "--interface", "wlan9", "--signal", url)
		d.wantCode(t, 1)
		d.want(t, "interface wlan9", doctor.Fail, "no such interface", "v1")
		d.want(t, "signal "+url, doctor.Fail, "connection refused", "lanft signal --listen")
		d.want(t, "multicast on v1", doctor.OK, "", "")
	})

	// A program holding UDP 5353 without sharing keeps lanft's responder
	// from hearing queries, its own included: alone on the LAN, a share
	// never finds a signaling host (where it would take about 2 s), and
	// nobody can find this machine. (It still gets through a host elected
	// on another machine: its queries need no port 5353.)
	t.Run("mdns port held without sharing", func(t *testing.T) {
		lan := netns.NewLAN(t, 1)
		pid := hold5353(t, lan, "exclusive")
		d := runDoctor(t, bin, lan, 1, "--interface", "v1")
		d.wantCode(t, 1)
		d.want(t, "mdns port", doctor.Fail, fmt.Sprintf("held by doctor.test (pid %d) without sharing", pid), "--signal")

		p := lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(1), bin, "--config-dir", t.TempDir(),
			"share", "--interface", "v1", "--name", "alice", "--json", bin)
		if line, err := p.Next(`"event":"online"`, 6*time.Second); err == nil {
			t.Errorf("share went online (%s) although UDP 5353 is held", line.Text)
		}
	})

	t.Run("mdns port shared", func(t *testing.T) {
		lan := netns.NewLAN(t, 1)
		pid := hold5353(t, lan, "shared")
		d := runDoctor(t, bin, lan, 1, "--interface", "v1")
		d.wantCode(t, 0)
		d.want(t, "mdns port", doctor.OK, fmt.Sprintf("shared with doctor.test (pid %d)", pid), "")
	})
}

// share runs `lanft share` on host i under name until the test ends, and
// waits until it is online.
func share(t *testing.T, bin string, lan *netns.LAN, i int, name string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), name+".txt")
	if err := os.WriteFile(f, []byte(name), 0o644); err != nil {
		t.Fatal(err)
	}
	p := lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(i), bin, "--config-dir", t.TempDir(),
		"share", "--interface", lan.Iface(i), "--name", name, "--json", f)
	p.WaitLine(t, `"event":"online"`, 20*time.Second)
}

// peers runs `lanft peers` on host i for at most limit (it waits for a
// signaling host as long as it is let) and returns what it printed.
func peers(t *testing.T, bin string, lan *netns.LAN, i int, limit time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	cmd := lan.Command(ctx, i, bin, "--config-dir", t.TempDir(), "peers", "--interface", lan.Iface(i), "--name", fmt.Sprintf("watcher%d", i))
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out) + fmt.Sprintf("\n(stopped after %s: no signaling host found)", limit)
	}
	if err != nil {
		return string(out) + "\n(" + err.Error() + ")"
	}
	return string(out)
}

// requireNft skips without nft, except under CI (CI=true), which installs it.
func requireNft(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nft (nftables) is missing, and CI=true: .ci/run installs it")
		}
		t.Skip("needs nft (nftables); skipped")
	}
}

// nft runs an nft command in host i's namespace (its own ruleset, gone
// with the namespace).
func nft(t *testing.T, lan *netns.LAN, i int, cmd string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"netns", "exec", lan.Namespace(i), "nft"}, strings.Fields(cmd)...)...).CombinedOutput(); err != nil {
		t.Fatalf("nft %s: %v: %s", cmd, err, out)
	}
}

// hold5353 starts this test binary in host 1 of lan as a program that
// listens on UDP 5353, sharing the port (as mDNS responders do) or not,
// and returns its pid.
func hold5353(t *testing.T, lan *netns.LAN, mode string) int {
	t.Helper()
	t.Setenv("LANFT_DOCTOR_TEST_HOLD", mode)
	p := lanfttest.Start(t, "ip", "netns", "exec", lan.Namespace(1), os.Args[0], "-test.run=^TestHelperHold5353$")
	p.WaitLine(t, "holding", 10*time.Second)
	return p.Cmd.Process.Pid // ip netns exec execs the program: same pid
}

// TestHelperHold5353 is the program hold5353 runs; it does nothing in a
// normal test run.
func TestHelperHold5353(t *testing.T) {
	mode := os.Getenv("LANFT_DOCTOR_TEST_HOLD")
	if mode == "" {
		return
	}
	var c net.PacketConn
	var err error
	switch mode {
	case "exclusive": // a plain bind, no SO_REUSEADDR
		c, err = net.ListenPacket("udp4", "0.0.0.0:5353")
	case "shared": // SO_REUSEADDR, like avahi or another lanft
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName("v1"); err == nil {
			c, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353})
		}
	}
	if err != nil {
		fmt.Println("cannot hold 5353:", err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Println("holding")
	time.Sleep(2 * time.Minute) // killed by the test long before
	os.Exit(0)
}
