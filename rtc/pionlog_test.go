package rtc

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// At --log-level warn, Pion's warnings and errors show (a TURN client's
// "Receive buffer full" is how dropped datagrams show), its debug and
// info lines do not, nor ICE's warnings (chatter on every connection).
func TestPionLogsLevels(t *testing.T) {
	var buf bytes.Buffer
	log := PionLogs(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))).NewLogger("turnc")
	log.Debugf("Received %d bytes", 1200)
	log.Infof("No Permission or Channel exists for %v", "10.0.0.1:1")
	log.Warnf("Receive buffer full")
	log.Errorf("Failed to send ChannelData from allocation %v", "10.0.0.1:1")
	out := buf.String()
	for _, want := range []string{"level=WARN", "Receive buffer full", "level=ERROR", "Failed to send ChannelData", "pion=turnc"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	ice := PionLogs(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))).NewLogger("ice")
	ice.Warnf("Failed to resolve TCP address %s", "10.0.0.1:3478")
	sctp := PionLogs(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))).NewLogger("sctp")
	sctp.Warnf("[%s] failed to write packets on netConn: %v", "0x1b908bc5e708", "dtls fatal: conn is closed")
	sctp.Warnf("[%s] failed to write packets on netConn: %v", "0x1b908bc5e708", "write udp: no buffer space available")
	out = buf.String()
	if !strings.Contains(out, "no buffer space available") {
		t.Errorf("log %q lacks SCTP's failed write on an open connection", out)
	}
	for _, not := range []string{"Received 1200 bytes", "No Permission", "Failed to resolve", "conn is closed"} {
		if strings.Contains(out, not) {
			t.Errorf("log %q has %q, a debug line, at warn level", out, not)
		}
	}
}
