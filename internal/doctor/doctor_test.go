package doctor

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestResultString(t *testing.T) {
	tests := []struct {
		name string
		r    Result
		want string
	}{
		{"ok hides the fix", Result{Check: "mdns port", Status: OK, Detail: "free", Fix: "nothing"}, "ok    mdns port: free"},
		{"warn", Result{Check: "interfaces", Status: Warn, Detail: "odd", Fix: "look"}, "warn  interfaces: odd — fix: look"},
		{"fail is loud", Result{Check: "multicast on eth0", Status: Fail, Detail: "cannot send", Fix: "allow it"}, "FAIL  multicast on eth0: cannot send — fix: allow it"},
		{"fail without a fix", Result{Check: "x", Status: Fail, Detail: "broken"}, "FAIL  x: broken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFailed(t *testing.T) {
	ok := Result{Status: OK}
	warn := Result{Status: Warn}
	fail := Result{Status: Fail}
	if Failed([]Result{ok, warn}) {
		t.Error("ok and warn: got failed, want not")
	}
	if !Failed([]Result{ok, fail, warn}) {
		t.Error("with a fail: got not failed, want failed")
	}
}

// Lines from a real /proc/net/udp and udp6 (little-endian host): avahi on
// 0.0.0.0:5353 and [::]:5353, something on 127.0.0.53:53, a lanft
// responder bound to 224.0.0.251:5353.
const (
	procUDPHeader = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops"
	procUDPAvahi  = "  123: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 21765 2 0000000000000000 0"
	procUDPDNS    = "  456: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 18803 2 0000000000000000 0"
	procUDPGroup  = "  789: FB0000E0:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99001 2 0000000000000000 0"
	procUDP6Any   = "  123: 00000000000000000000000000000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 21766 2 0000000000000000 0"
	procUDP6Loop  = "   12: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 5 2 0000000000000000 0"
)

var parseTests = []struct {
	name    string
	in      string
	want    []udpSocket
	wantErr bool
}{
	{"empty table", procUDPHeader + "\n", nil, false},
	{"ipv4", strings.Join([]string{procUDPHeader, procUDPAvahi, procUDPDNS, procUDPGroup}, "\n"), []udpSocket{
		{netip.MustParseAddr("0.0.0.0"), 5353, 104, 21765},
		{netip.MustParseAddr("127.0.0.53"), 53, 101, 18803},
		{netip.MustParseAddr("224.0.0.251"), 5353, 0, 99001},
	}, false},
	{"ipv6", strings.Join([]string{procUDPHeader, procUDP6Any, procUDP6Loop}, "\n"), []udpSocket{
		{netip.MustParseAddr("::"), 5353, 104, 21766},
		{netip.MustParseAddr("::1"), 8080, 1000, 5},
	}, false},
	{"no header", procUDPAvahi, []udpSocket{{netip.MustParseAddr("0.0.0.0"), 5353, 104, 21765}}, false},
	{"blank lines", procUDPHeader + "\n\n" + procUDPAvahi + "\n\n", []udpSocket{{netip.MustParseAddr("0.0.0.0"), 5353, 104, 21765}}, false},
	{"short line", procUDPHeader + "\n  1: 00000000:14E9 00000000:0000 07", nil, true},
	{"no port", procUDPHeader + "\n  1: 00000000 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 1 2 0 0", nil, true},
	{"odd address", procUDPHeader + "\n  1: 000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 1 2 0 0", nil, true},
	{"bad hex", procUDPHeader + "\n  1: 0000000G:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 1 2 0 0", nil, true},
	{"bad uid", procUDPHeader + "\n  1: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000 x 0 1 2 0 0", nil, true},
	{"bad inode", procUDPHeader + "\n  1: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 -1 2 0 0", nil, true},
}

func TestParseProcNetUDP(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the fixtures are from a little-endian host")
	}
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcNetUDP(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			if !tt.wantErr && !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseProcNetUDP(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		socks, err := parseProcNetUDP(strings.NewReader(in))
		if err != nil && socks != nil {
			t.Errorf("got sockets %v along with error %v", socks, err)
		}
		for _, s := range socks {
			if s.Port < 0 || s.Port > 65535 || !s.Addr.IsValid() {
				t.Errorf("impossible socket %+v", s)
			}
		}
	})
}

func TestSocketInode(t *testing.T) {
	tests := []struct {
		link string
		want uint64
		ok   bool
	}{
		{"socket:[21765]", 21765, true},
		{"socket:[0]", 0, true},
		{"pipe:[21765]", 0, false},
		{"/dev/null", 0, false},
		{"socket:[21765", 0, false},
		{"socket:[x]", 0, false},
		{"socket:[]", 0, false},
	}
	for _, tt := range tests {
		got, ok := socketInode(tt.link)
		if got != tt.want || ok != tt.ok {
			t.Errorf("socketInode(%q) = %d, %v; want %d, %v", tt.link, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSocketOwners(t *testing.T) {
	proc := t.TempDir()
	mk := func(pid, comm string, links map[string]string) {
		fd := filepath.Join(proc, pid, "fd")
		if err := os.MkdirAll(fd, 0o755); err != nil {
			t.Fatal(err)
		}
		if comm != "" {
			if err := os.WriteFile(filepath.Join(proc, pid, "comm"), []byte(comm+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, target := range links {
			if err := os.Symlink(target, filepath.Join(fd, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("812", "avahi-daemon", map[string]string{"0": "/dev/null", "12": "socket:[21765]", "13": "socket:[21766]"})
	mk("900", "", map[string]string{"3": "socket:[99001]"})   // no comm file
	mk("901", "bash", map[string]string{"3": "socket:[5]"})   // not asked for
	mk("self", "x", map[string]string{"3": "socket:[21765]"}) // not a pid
	got := socketOwners(proc, []uint64{21765, 21766, 99001, 424242})
	want := map[uint64]string{
		21765: "avahi-daemon (pid 812)",
		21766: "avahi-daemon (pid 812)",
		99001: "a program (pid 900)",
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for in, w := range want {
		if got[in] != w {
			t.Errorf("inode %d: got %q, want %q", in, got[in], w)
		}
	}
}

func TestNamedInterfaceMissing(t *testing.T) {
	ifi, r := NamedInterface("lanft-no-such-if0")
	if ifi != nil || r.Status != Fail || r.Detail != "no such interface" || !strings.HasPrefix(r.Fix, "name one of: ") {
		t.Errorf("got %v, %+v; want nil and a failure naming the interfaces to pick", ifi, r)
	}
}

// TestListenPortsLoopback binds on loopback only (nothing is sent).
func TestListenPortsLoopback(t *testing.T) {
	lo := loopback(t)
	r := ListenPorts(lo)
	if r.Status != OK || !strings.Contains(r.Detail, "TCP 127.0.0.1:") || !strings.Contains(r.Detail, "UDP 127.0.0.1:") {
		t.Errorf("got %+v, want ok listening on 127.0.0.1", r)
	}
}

func loopback(t *testing.T) *net.Interface {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range ifs {
		for _, ip := range ipv4Addrs(&ifi) {
			if ip.Equal(net.IPv4(127, 0, 0, 1)) {
				return &ifi
			}
		}
	}
	t.Skip("no interface with 127.0.0.1")
	return nil
}

// TestSignal runs the handshake check against servers on loopback.
func TestSignal(t *testing.T) {
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c.ReadMessage() // until the client closes
		c.Close()
	})
	mux.HandleFunc("/picky", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "signal: host name not accepted", http.StatusMisdirectedRequest)
	})
	mux.HandleFunc("/full", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "signal: too many clients", http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")

	// A port with nothing behind it: listen, note the port, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "ws://" + ln.Addr().String() + "/ws"
	ln.Close()

	tests := []struct {
		name   string
		url    string
		status Status
		detail string // a part of the detail
		fix    string // a part of the fix
	}{
		{"answers", ws + "/ws", OK, "answered the WebSocket handshake", ""},
		{"wrong path", ws + "/nope", Fail, "HTTP 404", "ending in /ws"},
		{"host name refused", ws + "/picky", Fail, "refused the handshake (HTTP 421)", "--allow-host 127.0.0.1"},
		{"full", ws + "/full", Fail, "HTTP 503", "try again later"},
		{"nothing listening", closed, Fail, "connection refused", "lanft signal --listen"},
		{"http url", srv.URL + "/ws", Fail, "not a ws:// or wss:// URL", "ws://"},
		{"no host", "ws:///ws", Fail, "not a ws:// or wss:// URL", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Signal(context.Background(), tt.url, 5*time.Second)
			if r.Status != tt.status || !strings.Contains(r.Detail, tt.detail) || !strings.Contains(r.Fix, tt.fix) {
				t.Errorf("got %+v, want status %s, detail with %q, fix with %q", r, tt.status, tt.detail, tt.fix)
			}
			if r.Check != "signal "+tt.url {
				t.Errorf("got check %q, want %q", r.Check, "signal "+tt.url)
			}
		})
	}
}
