package rtc

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/turn/v5"
)

// These tests put two peers behind NATs of Pion's virtual network, 200 ms
// apart and as far from a STUN and TURN server, with their signals
// delayed as a distant signaling host would (this kernel has no netem for
// the namespaces' links). They check the ICE acceptance waits of NewPeer:
// short enough that a relay pair is taken within a second, long enough
// that a punched pair still wins where there is one.

const (
	farServerIP = "1.2.3.4"
	farOneWay   = 100 * time.Millisecond // WAN router: home to home, home to server
)

var (
	homeNAT      = vnet.NATType{MappingBehavior: vnet.EndpointIndependent, FilteringBehavior: vnet.EndpointAddrPortDependent}
	symmetricNAT = vnet.NATType{MappingBehavior: vnet.EndpointAddrPortDependent, FilteringBehavior: vnet.EndpointAddrPortDependent}
)

// farNets builds the virtual internet: a WAN router that delays every
// packet by farOneWay, a STUN and TURN server on it, and one home network
// behind each NAT; it returns the homes' networks.
func farNets(t *testing.T, nats ...vnet.NATType) []*vnet.Net {
	t.Helper()
	logs := logging.NewDefaultLoggerFactory()
	logs.DefaultLogLevel = logging.LogLevelError
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "1.2.3.0/24", MinDelay: farOneWay, LoggerFactory: logs})
	if err != nil {
		t.Fatal(err)
	}
	server, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{farServerIP}})
	if err != nil {
		t.Fatal(err)
	}
	if err := wan.AddNet(server); err != nil {
		t.Fatal(err)
	}
	var homes []*vnet.Net
	for i, nat := range nats {
		r, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: fmt.Sprintf("10.%d.0.0/24", i+1), StaticIPs: []string{fmt.Sprintf("1.2.3.%d", 10+i)},
			NATType: &nat, LoggerFactory: logs})
		if err != nil {
			t.Fatal(err)
		}
		home, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{fmt.Sprintf("10.%d.0.2", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.AddNet(home); err != nil {
			t.Fatal(err)
		}
		if err := wan.AddRouter(r); err != nil {
			t.Fatal(err)
		}
		homes = append(homes, home)
	}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wan.Stop() })
	pc, err := server.ListenPacket("udp4", farServerIP+":3478")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: "lanft.test",
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, "pass"), ra.Username == "user"
		},
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.ParseIP(farServerIP), Address: "0.0.0.0", Net: server}}},
		LoggerFactory: logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return homes
}

// farSignals passes one peer's signals to the other after the round trip
// through a distant signaling host (2 × farOneWay), in order.
func farSignals(ctx context.Context, t *testing.T, to func() *Peer) SendFunc {
	type timed struct {
		at time.Time
		s  Signal
	}
	q := make(chan timed, 256)
	go func() {
		for {
			select {
			case m := <-q:
				time.Sleep(time.Until(m.at))
				if err := to().Handle(m.s); err != nil {
					t.Errorf("handle %s: %v", m.s.Kind, err)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return func(s Signal) error { q <- timed{time.Now().Add(2 * farOneWay), s}; return nil }
}

// connectFar connects two peers on homes[0] and homes[1] through the
// distant server and returns the offerer's route and how long the
// connection took from the offer.
func connectFar(t *testing.T, homes []*vnet.Net) (Route, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	servers := []ICEServer{{URLs: []string{"stun:" + farServerIP + ":3478"}},
		{URLs: []string{"turn:" + farServerIP + ":3478?transport=udp"}, Username: "user", Credential: "pass"}}
	var a, b *Peer
	var err error
	a, err = NewPeer(Config{ICEServers: servers, WAN: true, Net: homes[0]}, farSignals(ctx, t, func() *Peer { return b }))
	if err != nil {
		t.Fatal(err)
	}
	b, err = NewPeer(Config{ICEServers: servers, WAN: true, Net: homes[1]}, farSignals(ctx, t, func() *Peer { return a }))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sa, sb := connect(ctx, t, a, b)
	took := time.Since(start)
	route, err := a.Route()
	sa.Close()
	sb.Close()
	if err != nil {
		t.Fatal(err)
	}
	return route, took
}

// Two home NATs 200 ms apart: the punched pair wins over the relay pair
// that is also there, every time.
func TestDistantHomesPunchBeforeTheRelay(t *testing.T) {
	homes := farNets(t, homeNAT, homeNAT)
	for i := range 3 {
		route, took := connectFar(t, homes)
		t.Logf("run %d: %s to %s, connected %.2f s after the offer", i+1, route.Local.Type, route.Remote.Type, took.Seconds())
		if route.Local.Type == CandidateRelay || route.Remote.Type == CandidateRelay {
			t.Fatalf("run %d: route %s to %s: ICE took the relay where a punched pair exists", i+1, route.Local.Type, route.Remote.Type)
		}
	}
}

// A symmetric NAT 200 ms from a home NAT: only the relay gets through, and
// ICE takes it. (Connected 3.8 s after the offer here, 4.6 s with Pion's
// default waits; the rest is round trips of 400 ms through the relay:
// ICE's checks, DTLS, SCTP.)
func TestDistantSymmetricNATTakesTheRelaySoon(t *testing.T) {
	homes := farNets(t, symmetricNAT, homeNAT)
	route, took := connectFar(t, homes)
	t.Logf("%s to %s, connected %.2f s after the offer", route.Local.Type, route.Remote.Type, took.Seconds())
	if route.Local.Type != CandidateRelay && route.Remote.Type != CandidateRelay {
		t.Fatalf("route %s to %s, want a relay pair (a symmetric NAT lets no punched pair through)", route.Local.Type, route.Remote.Type)
	}
}
