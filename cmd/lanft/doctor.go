package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/discovery"
	"github.com/lanft/lanft/internal/doctor"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check whether this machine can find and reach peers, and say how to fix what is wrong",
		Description: `Checks which network interfaces discovery would use (and why it skips the
others), whether multicast works on each, whether UDP 5353 (mDNS) is free or
shared with another responder, whether lanft can listen for signaling and
WebRTC, which lanft instances answer on the LAN and how (over mDNS, or only
the unicast probe: the network drops multicast), whether each can be reached
(a firewall on its port, client isolation), whether a route such as a VPN's
takes part of the LAN's subnet, and, with --signal, whether that signaling
host answers. Prints one
line a check: "ok|warn|FAIL  check: detail — fix: ...". Exits with status 1
when a check fails that keeps lanft from working.

The multicast probe goes to 224.0.0.251 on a port of its own (not 5353),
with a TTL of 1, on the checked interfaces only. Looking for instances sends
what discovery sends: one mDNS query per interface and, when no other machine
answers it, a probe of at most 254 addresses of the interface's own private
subnet on TCP 7781 (--no-probe skips it).

Examples:
   lanft doctor
   lanft doctor --interface wlan0
   lanft doctor --signal ws://192.168.1.20:7780/ws
   lanft doctor --json | jq 'select(.status != "ok")'`,
		Flags: withGlobals(
			&cli.StringSliceFlag{Name: "interface", Usage: "check this interface `NAME` instead of the ones discovery picks (repeatable)"},
			&cli.StringFlag{Name: "signal", Usage: "also check that the signaling host at `URL` (ws://HOST:PORT/ws) answers", EnvVars: []string{"LANFT_SIGNAL"}},
			&cli.DurationFlag{Name: "timeout", Value: time.Second, Usage: "wait this `DURATION` for the multicast probe on each interface"},
			peerFlag, noProbeFlag, jsonFlag,
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cli.Exit("doctor: takes no arguments; name interfaces with --interface", 2)
			}
			peers, err := discovery.ResolvePeers(c.Context, c.StringSlice("peer"))
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			results := doctor.Run(c.Context, doctor.Config{
				Interfaces:   c.StringSlice("interface"),
				Signal:       c.String("signal"),
				ProbeTimeout: c.Duration("timeout"),
				Peers:        peers,
				NoProbe:      c.Bool("no-probe"),
			})
			for _, r := range results {
				if c.Bool("json") {
					b, err := json.Marshal(r)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s\n", b)
				} else {
					fmt.Fprintln(c.App.Writer, r)
				}
			}
			if c.Context.Err() != nil {
				return cli.Exit("doctor: interrupted", 130)
			}
			if doctor.Failed(results) {
				return cli.Exit("doctor: lanft cannot work here until the FAIL lines are fixed", 1)
			}
			return nil
		},
	}
}
