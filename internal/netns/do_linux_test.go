package netns

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
)

// TestDo: a socket opened in Do belongs to the host (it can bind the host's
// address, which the test's own namespace does not have), and no thread is
// left in the host's namespace afterwards.
func TestDo(t *testing.T) {
	lan := NewLAN(t, 1)
	addr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(lan.Addr(1), 0))
	if c, err := net.ListenUDP("udp4", addr); err == nil {
		c.Close()
		t.Fatalf("the test's namespace can bind %s: the check below would prove nothing", addr)
	}
	home, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		var c *net.UDPConn
		if err := lan.Do(1, func() (err error) {
			c, err = net.ListenUDP("udp4", addr)
			return err
		}); err != nil {
			t.Fatalf("bind %s in the host's namespace: %v", addr, err)
		}
		c.Close()
	}
	// Every thread the runtime may hand out is back home.
	var wg sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if ns, err := os.Readlink("/proc/thread-self/ns/net"); err != nil || ns != home {
				t.Errorf("a thread is in %s (%v), want %s", ns, err, home)
			}
		})
	}
	wg.Wait()
}
