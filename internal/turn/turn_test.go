package turn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"

	"github.com/lanft/lanft/internal/netns"
	"github.com/lanft/lanft/signal"
)

func TestCredentialShape(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_800_000_000, 0)
	c := Issue(secret, "room1", time.Hour, now)
	exp, id, ok := strings.Cut(c.Username, ":")
	if !ok || exp != "1800003600" {
		t.Fatalf("username %q, want EXPIRY:ID with EXPIRY 1800003600", c.Username)
	}
	if strings.Contains(id, "room1") || !strings.HasPrefix(id, RoomTag(secret, "room1")+".") {
		t.Errorf("id %q, want the room's tag and a nonce, not the room's name", id)
	}
	// The TURN REST password, as coturn computes it.
	if c.Password != Password(secret, c.Username) || len(c.Password) != 28 {
		t.Errorf("password %q, want base64 of a 20-byte HMAC-SHA1", c.Password)
	}
	if RoomTag(secret, "room1") == RoomTag([]byte("other"), "room1") {
		t.Error("two secrets give one room the same tag")
	}
	if Issue(secret, "room1", time.Hour, now).Username == c.Username {
		t.Error("two credentials for one room share a username")
	}
}

// staticDir is a Directory: the addresses logged in to each room, which a
// test may change.
type staticDir struct {
	mu    sync.Mutex
	rooms map[string]signal.PeerAddrs
}

func (d *staticDir) RoomPeerAddrs(room string) signal.PeerAddrs {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rooms[room]
}

func (d *staticDir) set(room string, a signal.PeerAddrs) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rooms[room] = a
}

// relayLAN runs a TURN server on host 1 of a namespace LAN of three. Host 2
// is a client of room "r"; host 3 is logged in nowhere.
type relayLAN struct {
	lan *netns.LAN
	srv *Server
	dir *staticDir
	url string // host:port of the server's UDP socket
}

func startRelayLAN(t *testing.T, cfg Config) *relayLAN {
	lan := netns.NewLAN(t, 3)
	r := &relayLAN{lan: lan, dir: &staticDir{rooms: map[string]signal.PeerAddrs{"r": {Seen: []netip.Addr{lan.Addr(2)}}}}}
	cfg.Directory = r.dir
	cfg.PublicIP = lan.Addr(1)
	cfg.ListenPacket = func(network, addr string) (pc net.PacketConn, err error) {
		err = lan.Do(1, func() error {
			pc, err = net.ListenPacket(network, addr)
			return err
		})
		return pc, err
	}
	err := lan.Do(1, func() error {
		pc, err := net.ListenPacket("udp4", lan.Addr(1).String()+":0")
		if err != nil {
			return err
		}
		cfg.PacketConn = pc
		r.srv, err = New(cfg) // in host 1, so that it knows host 1's own addresses
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r.url = cfg.PacketConn.LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.srv.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

// listen opens a UDP socket on host i.
func (r *relayLAN) listen(t *testing.T, i int) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	err := r.lan.Do(i, func() (err error) {
		pc, err = net.ListenPacket("udp4", r.lan.Addr(i).String()+":0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// client is a TURN client on host i with credential c.
func (r *relayLAN) client(t *testing.T, i int, c Credential) *pionturn.Client {
	t.Helper()
	conn := r.listen(t, i)
	conn.(*net.UDPConn).SetReadBuffer(4 << 20) // as lanft's own (rtc's bufferedNet)
	cl, err := pionturn.NewClient(&pionturn.ClientConfig{
		TURNServerAddr: r.url, STUNServerAddr: r.url, Username: c.Username, Password: c.Password,
		Realm: Realm, Conn: conn, RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func allocate(t *testing.T, cl *pionturn.Client) (net.PacketConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	relay, err := cl.AllocateWithContext(ctx)
	if err == nil {
		t.Cleanup(func() { relay.Close() })
	}
	return relay, err
}

// expectDatagram reads one datagram on pc within the deadline.
func expectDatagram(t *testing.T, pc net.PacketConn, want string) net.Addr {
	t.Helper()
	buf := make([]byte, 1500)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
	}
	return from
}

// The relay carries datagrams between a client and an address logged in to
// its room, and refuses everything else: another host, the server's own
// address, loopback.
func TestRelayOnlyToTheRoom(t *testing.T) {
	r := startRelayLAN(t, Config{})
	cl := r.client(t, 2, r.srv.Credentials("r", time.Now()))
	relay, err := allocate(t, cl)
	if err != nil {
		t.Fatalf("allocate with a fresh credential: %v", err)
	}
	if got := relay.LocalAddr().(*net.UDPAddr).IP.String(); got != r.lan.Addr(1).String() {
		t.Errorf("relay at %s, want the public address %s", got, r.lan.Addr(1))
	}

	// Allowed: a peer at host 2, an address of room r.
	peer := r.listen(t, 2)
	if _, err := relay.WriteTo([]byte("hello"), peer.LocalAddr()); err != nil {
		t.Fatalf("relay to a client of the room: %v", err)
	}
	from := expectDatagram(t, peer, "hello")
	if _, err := peer.WriteTo([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	expectDatagram(t, relay, "back")

	// Refused: host 3 (logged in nowhere), loopback, any address.
	outsider := r.listen(t, 3)
	for _, to := range []net.Addr{
		outsider.LocalAddr(),
		&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53},
		&net.UDPAddr{IP: net.IPv4zero, Port: 53},
	} {
		if err := cl.CreatePermission(to); err == nil {
			t.Errorf("permission to %s granted, want it refused", to)
		}
	}
	// Nothing reaches host 3, nor a service on the server's own host (its
	// address is permitted, per IP, for the relays of the room, but only
	// a live relay port of the room receives).
	service := r.listen(t, 1)
	for _, victim := range []net.PacketConn{outsider, service} {
		relay.WriteTo([]byte("leak"), victim.LocalAddr())
	}
	for _, victim := range []net.PacketConn{outsider, service} {
		victim.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if n, _, err := victim.ReadFrom(make([]byte, 100)); err == nil {
			t.Errorf("%s, not a client of the room, received %d bytes through the relay", victim.LocalAddr(), n)
		}
	}
}

// Credentials of another host (another secret), expired or made up cannot
// allocate; a credential of another room cannot reach this room.
func TestCredentialsThatCannotAllocate(t *testing.T) {
	r := startRelayLAN(t, Config{})
	other := Issue(NewSecret(), "r", time.Hour, time.Now())
	r.srv.Credentials("r", time.Now()) // the room's tag is known here
	expired := r.srv.Credentials("r", time.Now().Add(-2*time.Hour))
	forged := r.srv.Credentials("r", time.Now())
	forged.Password = Password([]byte("guess"), forged.Username)
	for name, c := range map[string]Credential{"another host's": other, "expired": expired, "forged": forged} {
		if _, err := allocate(t, r.client(t, 2, c)); err == nil {
			t.Errorf("%s credential allocated a relay", name)
		}
	}

	// A client of room "q", where nobody is logged in, reaches no one.
	cl := r.client(t, 2, r.srv.Credentials("q", time.Now()))
	if _, err := allocate(t, cl); err != nil {
		t.Fatal(err)
	}
	if err := cl.CreatePermission(r.listen(t, 2).LocalAddr()); err == nil {
		t.Error("a client of another room got a permission to a client of room r")
	}
}

// A credential that expires during an allocation still refreshes it and
// creates permissions: the relay keeps working; a new allocation with it fails.
func TestExpiryDoesNotCutARelay(t *testing.T) {
	r := startRelayLAN(t, Config{TTL: 1500 * time.Millisecond})
	c := r.srv.Credentials("r", time.Now())
	cl := r.client(t, 2, c)
	relay, err := allocate(t, cl)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(c.Expires.Add(1100 * time.Millisecond))) // the expiry is on the clock; nothing else to wait on
	peer := r.listen(t, 2)
	if _, err := relay.WriteTo([]byte("after expiry"), peer.LocalAddr()); err != nil {
		t.Fatalf("relay after the credential expired: %v", err)
	}
	expectDatagram(t, peer, "after expiry")
	if _, err := allocate(t, r.client(t, 2, c)); err == nil {
		t.Error("an expired credential allocated a new relay")
	}
}

// Past MaxAllocations a credential gets 486 Allocation Quota Reached.
func TestAllocationQuota(t *testing.T) {
	r := startRelayLAN(t, Config{MaxAllocations: 2})
	c := r.srv.Credentials("r", time.Now())
	for i := range 2 {
		if _, err := allocate(t, r.client(t, 2, c)); err != nil {
			t.Fatalf("allocation %d of 2: %v", i+1, err)
		}
	}
	_, err := allocate(t, r.client(t, 2, c))
	if err == nil || !strings.Contains(err.Error(), "486") && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("third allocation: %v, want a 486 quota error", err)
	}
	if err == nil {
		t.Error("a credential got more allocations than its quota")
	}
}

// An external coturn: the login gets its STUN URLs as they are, a call
// also its TURN URLs with a REST credential signed with the shared secret
// coturn checks.
func TestExternalICEServers(t *testing.T) {
	e := External{URLs: []string{"stun:turn.example.org:3478", "turn:turn.example.org:3478?transport=udp"}, Secret: []byte("shared")}
	if login := e.ICEServers("room"); len(login) != 1 || login[0].Username != "" || login[0].URLs[0] != "stun:turn.example.org:3478" {
		t.Fatalf("login ICEServers() = %+v, want the STUN URL alone, without a credential", login)
	}
	got := e.CallICEServers("room")
	if len(got) != 2 || got[0].Username != "" || got[1].Username == "" {
		t.Fatalf("CallICEServers() = %+v, want STUN without and TURN with a credential", got)
	}
	if got[1].Credential != Password([]byte("shared"), got[1].Username) {
		t.Errorf("credential %q is not HMAC-SHA1(secret, username)", got[1].Credential)
	}
	exp, _, err := parseUsername(got[1].Username)
	if err != nil || time.Until(exp) > DefaultTTL || time.Until(exp) < DefaultTTL-time.Minute {
		t.Errorf("username %q: expiry %v, want DefaultTTL (%v) from now", got[1].Username, exp, DefaultTTL)
	}
}
