package rtc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// PionLogs sends Pion's logs (ICE, DTLS, SCTP, the TURN client here; the
// TURN server in internal/turn) to log: Pion's debug and info lines at
// debug level (it logs several for every relayed datagram, so they are
// formatted only when that level is on), its warnings (a TURN client's full
// receive buffer, a failed send: dropped datagrams) at warn, its errors at
// error. ICE's warnings are its gathering's and checks' chatter on every
// connection (a TURN-over-TCP URL while ICE keeps to UDP, a check before
// the first pair), so they are info, as is SCTP's warning that it could
// not write to the DTLS connection once that was closed (its last packets
// as a connection ends, every time).
func PionLogs(log *slog.Logger) logging.LoggerFactory { return pionFactory{log} }

type pionFactory struct{ log *slog.Logger }

func (f pionFactory) NewLogger(scope string) logging.LeveledLogger {
	warn := slog.LevelWarn
	if scope == "ice" {
		warn = slog.LevelInfo
	}
	return pionLogger{log: f.log.With("pion", scope), warn: warn, sctp: scope == "sctp"}
}

type pionLogger struct {
	log  *slog.Logger
	warn slog.Level // where Pion's warnings go
	sctp bool
}

func (l pionLogger) Trace(string)              {}
func (l pionLogger) Tracef(string, ...any)     {}
func (l pionLogger) Debug(m string)            { l.log.Debug(m) }
func (l pionLogger) Debugf(f string, a ...any) { l.at(slog.LevelDebug, f, a) }
func (l pionLogger) Info(m string)             { l.log.Debug(m) }
func (l pionLogger) Infof(f string, a ...any)  { l.at(slog.LevelDebug, f, a) }
func (l pionLogger) Warn(m string)             { l.log.Log(context.Background(), l.warn, m) }
func (l pionLogger) Warnf(f string, a ...any) {
	if l.sctp && l.log.Enabled(context.Background(), l.warn) {
		if m := fmt.Sprintf(f, a...); strings.HasSuffix(m, "conn is closed") {
			l.log.Info(m)
		} else {
			l.log.Log(context.Background(), l.warn, m)
		}
		return
	}
	l.at(l.warn, f, a)
}
func (l pionLogger) Error(m string)            { l.log.Error(m) }
func (l pionLogger) Errorf(f string, a ...any) { l.at(slog.LevelError, f, a) }

// at formats only when the level is on.
func (l pionLogger) at(level slog.Level, f string, a []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(f, a...))
	}
}
