package netns

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as the program run inside the namespaces:
//
//	LANFT_NETNS_HELPER=listen LANFT_IFACE=v2: join the test group on v2 at
//	    testPort, print "ready", then "got PAYLOAD" for each datagram
//	LANFT_NETNS_HELPER=send LANFT_TO=ADDR:PORT LANFT_MSG=PAYLOAD: send one datagram
func TestMain(m *testing.M) {
	switch os.Getenv("LANFT_NETNS_HELPER") {
	case "listen":
		os.Exit(listen(os.Getenv("LANFT_IFACE")))
	case "send":
		os.Exit(send(os.Getenv("LANFT_TO"), os.Getenv("LANFT_MSG")))
	}
	os.Exit(m.Run())
}

// testGroup is an administratively scoped group: it never leaves the LAN.
// testPort is fixed because every listener must use the same one; the
// namespaces are new, so nothing else can hold it.
const (
	testGroup = "239.255.77.1"
	testPort  = 7777
)

func listen(iface string) int {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.ParseIP(testGroup), Port: testPort})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("got %s\n", buf[:n])
	}
}

func send(to, msg string) int {
	c, err := net.Dial("udp4", to)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name             string
		euid             int
		ci               string
		haveIP           bool
		wantSkip, wantFl bool
		wantMsg          string
	}{
		{"root with ip", 0, "", true, false, false, ""},
		{"root with ip in CI", 0, "true", true, false, false, ""},
		{"user", 1000, "", true, true, false, "need root"},
		{"user, CI not true", 1000, "1", true, true, false, "need root"},
		{"user in CI", 1000, "true", true, false, true, "CI=true"},
		{"root without ip", 0, "", false, true, false, "ip command"},
		{"root without ip in CI", 0, "true", false, false, true, "ip command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skip, fail, msg := decide(tt.euid, tt.ci, tt.haveIP)
			if skip != tt.wantSkip || fail != tt.wantFl || !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("decide(%d, %q, %v) = %v, %v, %q; want %v, %v, containing %q",
					tt.euid, tt.ci, tt.haveIP, skip, fail, msg, tt.wantSkip, tt.wantFl, tt.wantMsg)
			}
		})
	}
}

// listener is the listen helper running in one host.
type listener struct {
	mu   sync.Mutex
	got  []string
	cond chan struct{} // closed and replaced on each datagram
	cmd  *exec.Cmd
	done chan struct{}
}

func startListener(t *testing.T, lan *LAN, i int) *listener {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := lan.Command(t.Context(), i, exe)
	cmd.Env = append(os.Environ(), "LANFT_NETNS_HELPER=listen", "LANFT_IFACE="+lan.Iface(i))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l := &listener{cmd: cmd, cond: make(chan struct{}), done: make(chan struct{})}
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("listener on host %d did not start", i)
	}
	if sc.Text() != "ready" {
		t.Fatalf("listener on host %d: %q", i, sc.Text())
	}
	go func() {
		defer close(l.done)
		for sc.Scan() {
			l.mu.Lock()
			l.got = append(l.got, strings.TrimPrefix(sc.Text(), "got "))
			close(l.cond)
			l.cond = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *listener) stop() {
	l.cmd.Process.Kill()
	<-l.done
	l.cmd.Wait()
}

func (l *listener) has(msg string) (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.got, msg), l.cond
}

// sendUntil sends msg from host `from` to `to` every 100 ms until every
// listener in want has it, or fails after limit.
func sendUntil(t *testing.T, lan *LAN, from int, to, msg string, limit time.Duration, want ...*listener) {
	t.Helper()
	exe, _ := os.Executable()
	deadline := time.After(limit)
	for {
		cmd := lan.Command(t.Context(), from, exe)
		cmd.Env = append(os.Environ(), "LANFT_NETNS_HELPER=send", "LANFT_TO="+to, "LANFT_MSG="+msg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("send %q to %s from host %d: %v: %s", msg, to, from, err, out)
		}
		all := true
		var wait <-chan struct{}
		for _, l := range want {
			if ok, c := l.has(msg); !ok {
				all, wait = false, c
				break
			}
		}
		if all {
			return
		}
		select {
		case <-wait:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%q to %s from host %d: not received within %v", msg, to, from, limit)
		}
	}
}

func TestLAN(t *testing.T) {
	lan := NewLAN(t, 3)
	if lan.Len() != 3 || lan.Iface(2) != "v2" || lan.Addr(3).As4()[3] != 3 || lan.Prefix(1).Bits() != 24 {
		t.Fatalf("LAN accessors: len %d iface %q addr %v prefix %v", lan.Len(), lan.Iface(2), lan.Addr(3), lan.Prefix(1))
	}
	l2, l3 := startListener(t, lan, 2), startListener(t, lan, 3)
	group := fmt.Sprintf("%s:%d", testGroup, testPort)

	sendUntil(t, lan, 1, group, "multicast", 5*time.Second, l2, l3)
	sendUntil(t, lan, 1, fmt.Sprintf("%s:%d", lan.Addr(2), testPort), "unicast", 5*time.Second, l2)

	lan.Cut(2)
	sendUntil(t, lan, 1, group, "while cut", 5*time.Second, l3)
	if ok, c := l2.has("while cut"); ok {
		t.Fatal("host 2 received multicast while cut")
	} else {
		select {
		case <-c:
			if ok, _ := l2.has("while cut"); ok {
				t.Fatal("host 2 received multicast while cut")
			}
		case <-time.After(300 * time.Millisecond):
		}
	}

	lan.Restore(2)
	sendUntil(t, lan, 1, group, "restored", 5*time.Second, l2, l3)
}

func TestLANCleanup(t *testing.T) {
	var names []string
	var forgotten *exec.Cmd
	t.Run("lan", func(t *testing.T) {
		lan := NewLAN(t, 2)
		names = []string{lan.prefix + "-sw", lan.Namespace(1), lan.Namespace(2)}
		startListener(t, lan, 1)
		// A process the test forgets to stop: the LAN's cleanup must kill
		// it, or its namespace would live on unseen.
		exe, _ := os.Executable()
		forgotten = lan.Command(context.Background(), 2, exe)
		forgotten.Env = append(os.Environ(), "LANFT_NETNS_HELPER=listen", "LANFT_IFACE="+lan.Iface(2))
		out, err := forgotten.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := forgotten.Start(); err != nil {
			t.Fatal(err)
		}
		// Once it says ready it runs in the namespace (before, `ip netns
		// exec` may not have entered it yet, and no cleanup can see it).
		if sc := bufio.NewScanner(out); !sc.Scan() || sc.Text() != "ready" {
			t.Fatalf("the forgotten process did not get ready: %q", sc.Text())
		}
		go io.Copy(io.Discard, out)
	})
	if forgotten != nil {
		done := make(chan error, 1)
		go func() { done <- forgotten.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Error("forgotten process exited cleanly, want killed")
			}
		case <-time.After(5 * time.Second):
			forgotten.Process.Kill()
			<-done
			t.Error("the LAN's cleanup did not kill a process left in its namespace")
		}
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(string(out), n+" ") || strings.Contains(string(out), n+"\n") {
			t.Errorf("namespace %s still exists after the test:\n%s", n, out)
		}
	}
}
