//go:build linux

package doctor_test

import (
	"net/netip"
	"testing"

	"github.com/lanft/lanft/internal/doctor"
	"github.com/lanft/lanft/internal/lanfttest"
	"github.com/lanft/lanft/internal/netns"
)

// LANs that get in the way (issue 22): doctor names the cause, with what
// to do, and fails nothing on a normal LAN.
func TestDoctorNamesTheCause(t *testing.T) {
	netns.Require(t)
	bin := lanfttest.Binary(t)

	t.Run("normal LAN: no FAIL, instances over mDNS", func(t *testing.T) {
		lan := netns.NewLAN(t, 2)
		share(t, bin, lan, 2, "bob")
		d := runDoctor(t, bin, lan, 1, "--interface", "v1")
		d.wantCode(t, 0)
		d.want(t, "lanft on v1", doctor.OK, "answer over mDNS: bob ("+lan.Addr(2).String()+")", "")
		d.want(t, "subnet on v1", doctor.OK, "over v1", "")
		for _, r := range d.results {
			if r.Status != doctor.OK {
				t.Errorf("on a normal LAN: %v", r)
			}
		}
	})

	t.Run("multicast blocked by the network", func(t *testing.T) {
		lan := netns.NewLAN(t, 2)
		lan.DropMulticast()
		share(t, bin, lan, 2, "bob")
		d := runDoctor(t, bin, lan, 1, "--interface", "v1")
		d.wantCode(t, 0)
		d.want(t, "lanft on v1", doctor.Warn, "network drops multicast; lanft falls back to probing its subnet", "--peer "+lan.Addr(2).String())
		d.want(t, "multicast on v1", doctor.OK, "", "") // this machine's own multicast works
	})

	t.Run("a VPN route over part of the LAN", func(t *testing.T) {
		lan := netns.NewLAN(t, 2)
		vpn := lan.AddLink(1)
		b := lan.Addr(1).As4()
		upper := netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], b[2], 128}), 25)
		lan.IP("-n", lan.Namespace(1), "route", "add", upper.String(), "dev", vpn.HostIface)
		d := runDoctor(t, bin, lan, 1, "--interface", "v1")
		d.wantCode(t, 0)
		d.want(t, "subnet on v1", doctor.Warn, "a route (a VPN's?) sends part of v1's subnet", "allow local network access")
		d.want(t, "subnet on v1", doctor.Warn, netip.AddrFrom4([4]byte{b[0], b[1], b[2], 128}).String()+" over "+vpn.HostIface, "")
	})

	t.Run("a firewall on the signaling port", func(t *testing.T) {
		requireNft(t)
		lan := netns.NewLAN(t, 2)
		share(t, bin, lan, 2, "bob")
		// bob's machine drops every incoming TCP connection; mDNS (UDP)
		// still answers.
		lan.Nft(lan.Namespace(2), `table inet fw {
  chain in { type filter hook input priority 0; policy accept; iifname "v2" tcp flags syn drop; }
}
`)
		d := runDoctor(t, bin, lan, 1, "--interface", "v1")
		d.wantCode(t, 0)
		d.want(t, "reach bob ("+lan.Addr(2).String()+")", doctor.Warn, "its signaling port TCP", "allow lanft's incoming TCP")
	})

	t.Run("client isolation", func(t *testing.T) {
		lan := netns.NewLAN(t, 3)
		for _, p := range []string{"p1", "p2"} { // two Wi-Fi clients; h3 is wired
			lan.IP("-n", lan.SwitchNS(), "link", "set", p, "type", "bridge_slave", "isolated", "on")
		}
		share(t, bin, lan, 3, "wired")
		share(t, bin, lan, 2, "bob")
		d := runDoctor(t, bin, lan, 1, "--interface", "v1")
		d.wantCode(t, 0)
		d.want(t, "client isolation on v1", doctor.Warn, "sees bob ("+lan.Addr(2).String()+"), which this machine cannot reach", "turn off client (AP) isolation")
	})
}
