package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/doctor"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check whether this machine can find and reach peers, and say how to fix what is wrong",
		Description: `Checks which network interfaces discovery would use (and why it skips the
others), whether multicast works on each, whether UDP 5353 (mDNS) is free or
shared with another responder, whether lanft can listen for signaling and
WebRTC, and, with --signal, whether that signaling host answers. Prints one
line a check: "ok|warn|FAIL  check: detail — fix: ...". Exits with status 1
when a check fails that keeps lanft from working.

The multicast probe goes to 224.0.0.251 on a port of its own (not 5353),
with a TTL of 1, on the checked interfaces only.

Examples:
   lanft doctor
   lanft doctor --interface wlan0
   lanft doctor --signal ws://192.168.1.20:7780/ws
   lanft doctor --json | jq 'select(.status != "ok")'`,
		Flags: withGlobals(
			&cli.StringSliceFlag{Name: "interface", Usage: "check this interface `NAME` instead of the ones discovery picks (repeatable)"},
			&cli.StringFlag{Name: "signal", Usage: "also check that the signaling host at `URL` (ws://HOST:PORT/ws) answers", EnvVars: []string{"LANFT_SIGNAL"}},
			&cli.DurationFlag{Name: "timeout", Value: time.Second, Usage: "wait this `DURATION` for the multicast probe on each interface"},
			jsonFlag,
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cli.Exit("doctor: takes no arguments; name interfaces with --interface", 2)
			}
			results := doctor.Run(c.Context, doctor.Config{
				Interfaces:   c.StringSlice("interface"),
				Signal:       c.String("signal"),
				ProbeTimeout: c.Duration("timeout"),
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
