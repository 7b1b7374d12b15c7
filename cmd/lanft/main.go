// Command lanft shares files with anyone on the same LAN, peer to peer over
// WebRTC data channels, with no server to set up and no account.
//
// This file wires flags to internal/node; the work happens there.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Set by the release build (goreleaser ldflags).
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// exitInterrupted is the exit code after Ctrl-C (128+SIGINT).
const exitInterrupted = 130

func main() {
	tuneGC()
	ctx, cancel := context.WithCancel(context.Background())
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	var got atomic.Value
	go func() {
		got.Store(<-sigc)
		cancel()
	}()
	err := newApp(os.Stdin, os.Stdout, os.Stderr).RunContext(ctx, os.Args)
	signal.Stop(sigc)
	if s, ok := got.Load().(os.Signal); ok {
		// The shell's convention: 128+SIGINT (130) after Ctrl-C, 128+SIGTERM
		// (143). A command may say more (a receive: how to resume) with an
		// exit error of code 130.
		code := exitInterrupted
		if s == syscall.SIGTERM {
			code = 128 + int(syscall.SIGTERM)
		}
		msg := "interrupted"
		var exit cli.ExitCoder
		if errors.As(err, &exit) && exit.ExitCode() == exitInterrupted && err.Error() != "" {
			msg = err.Error()
		}
		fmt.Fprintln(os.Stderr, "lanft:", msg)
		os.Exit(code)
	}
	if err != nil {
		var exit cli.ExitCoder
		if errors.As(err, &exit) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "lanft:", msg)
			}
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "lanft:", oneLine(err))
		os.Exit(1)
	}
}

// versionString is what the release build stamped in, or else what the Go
// toolchain recorded (a `go install ...@vX.Y.Z` or a build from a checkout).
func versionString() string {
	v, c, d := version, commit, date
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		if mv := info.Main.Version; mv != "" && mv != "(devel)" {
			v = mv
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && c == "none":
				c = s.Value
			case s.Key == "vcs.time" && d == "unknown":
				d = s.Value
			}
		}
	}
	return fmt.Sprintf("%s (commit %s, built %s)", v, c, d)
}

// tuneGC trades memory for speed unless the user set GOGC or GOMEMLIMIT:
// a transfer allocates per packet inside Pion, and the default GC spent
// about a fifth of the CPU of a transfer on a 1 Gbit/s link. With these
// settings peak RSS stays near 70 MiB while throughput rose by about 20%.
func tuneGC() {
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(64 << 20)
	}
}

// oneLine keeps an error to one line on the terminal.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "lanft",
		Usage:     "send files to anyone on your LAN, peer to peer, with no setup",
		Version:   versionString(),
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: append(globalFlags(),
			&cli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write a CPU profile to `FILE` (for performance work)"}),
		EnableBashCompletion: true,
		Suggest:              true,
		Commands: []*cli.Command{
			shareCommand(),
			receiveCommand(),
			peersCommand(),
			upCommand(), sendCommand(), devicesCommand(), trustCommand(true), trustCommand(false), historyCommand(),
			signalCommand(),
			completionCommand(),
			doctorCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints errors once
		Before: func(c *cli.Context) error {
			path := c.String("cpuprofile")
			if path == "" {
				return nil
			}
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			return pprof.StartCPUProfile(f)
		},
		After: func(c *cli.Context) error {
			if c.String("cpuprofile") != "" {
				pprof.StopCPUProfile()
			}
			return nil
		},
	}
}

// Flags shared by share, receive and peers.
var (
	signalFlag = &cli.StringFlag{
		Name:    "signal",
		Usage:   "signaling host `URL` (ws://HOST:PORT/ws); skips LAN discovery",
		EnvVars: []string{"LANFT_SIGNAL"},
	}
	interfaceFlag = &cli.StringSliceFlag{
		Name:  "interface",
		Usage: "use only this network interface `NAME` for peer connections (repeatable); \"lo\" allows loopback",
	}
	jsonFlag     = &cli.BoolFlag{Name: "json", Usage: "print newline-delimited JSON events on stdout instead of human output"}
	fallbackFlag = &cli.StringFlag{
		Name:    "fallback-signal",
		Usage:   "signaling host `URL` to use when no other lanft instance is found on the LAN",
		EnvVars: []string{"LANFT_FALLBACK_SIGNAL"},
	}
	peerFlag = &cli.StringSliceFlag{
		Name:  "peer",
		Usage: "also ask the lanft at `HOST[:PORT]` (or the URL of its page) directly, for networks that block mDNS (repeatable)",
	}
	noProbeFlag = &cli.BoolFlag{
		Name:  "no-probe",
		Usage: "never probe the subnet for lanft instances when mDNS finds none (--peer and remembered instances are still asked)",
	}
	nameFlag = &cli.StringFlag{Name: "name", Usage: "the `NAME` others see (default: host name and the start of the device id)"}
	codeFlag = &cli.StringFlag{
		Name:    "code",
		Usage:   "connect only to a peer that knows these `WORDS` (both sides give the same code; for untrusted networks)",
		EnvVars: []string{"LANFT_CODE"},
	}
	noRelayFlag   = &cli.BoolFlag{Name: "no-relay", Usage: "as the LAN's signaling host, relay no transfer between two other peers that cannot reach each other"}
	acceptKeyFlag = &cli.BoolFlag{Name: "accept-new-key", Usage: "accept a known peer name that presents a new device key (after checking why)"}
	pathFlag      = &cli.StringFlag{
		Name:    "path",
		Value:   "auto",
		Usage:   "how the bytes move: `MODE` auto (the fastest path that works: direct TCP on a LAN, HTTP to a page, QUIC through NATs, a TCP relay, else the best data channel path), datachannel (only the data channel: never direct TCP, QUIC, HTTP or a TCP relay) or relay (only through a relay: the signaling host's TCP relay between two lanft CLIs, its TURN relay for the data channel)",
		EnvVars: []string{"LANFT_PATH"},
	}
)

// globalFlags are accepted before the command and after it alike
// (`lanft --log-level debug share` and `lanft share --log-level debug`).
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Usage: "print log records of this `LEVEL` and above on stderr: debug, info, warn or error (default: none)"},
		&cli.StringFlag{Name: "config-dir", EnvVars: []string{"LANFT_CONFIG_DIR"}, Usage: "keep the device key and known peers in `DIR` (default: the user config folder/lanft)"},
	}
}

// withGlobals is a command's flags with the global ones.
func withGlobals(flags ...cli.Flag) []cli.Flag { return append(flags, globalFlags()...) }

// global is the value of a global flag wherever it was given: after the
// command, before it, or from its environment variable.
func global(c *cli.Context, name string) string {
	for _, x := range c.Lineage() {
		if slices.Contains(x.LocalFlagNames(), name) {
			return x.String(name)
		}
	}
	return c.String(name)
}

// logger prints log records only when --log-level asks for them: the human
// output is one line an event, and --json output is events.
func logger(c *cli.Context) (*slog.Logger, error) {
	name := global(c, "log-level")
	if name == "" {
		return slog.New(slog.DiscardHandler), nil
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return nil, cli.Exit(fmt.Sprintf("bad --log-level %q: use debug, info, warn or error", name), 2)
	}
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level})), nil
}

// defaultName is the --name, or the host name with the start of the device
// id, stable across runs so that peers' pins keep matching.
func defaultName(c *cli.Context, deviceID string) string {
	if n := c.String("name"); n != "" {
		return n
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "lanft"
	}
	host, _, _ = strings.Cut(host, ".")
	return host + "-" + strings.ToLower(deviceID[:4])
}

// configDir is where the device key and pins live.
func configDir(c *cli.Context) (string, error) {
	if d := global(c, "config-dir"); d != "" {
		return d, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config folder (set --config-dir or LANFT_CONFIG_DIR): %w", err)
	}
	return filepath.Join(base, "lanft"), nil
}
