package turn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// slogFactory sends Pion's logs to slog: its debug and info lines at debug
// level (Pion logs several for every relayed datagram), its warnings and
// errors (a full buffer, a failed send: dropped datagrams) at warn level.
type slogFactory struct{ log *slog.Logger }

func (f *slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLogger{f.log.With("pion", scope)}
}

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Trace(string)              {}
func (l slogLogger) Tracef(string, ...any)     {}
func (l slogLogger) Debug(m string)            { l.log.Debug(m) }
func (l slogLogger) Debugf(f string, a ...any) { l.at(slog.LevelDebug, f, a) }
func (l slogLogger) Info(m string)             { l.log.Debug(m) }
func (l slogLogger) Infof(f string, a ...any)  { l.at(slog.LevelDebug, f, a) }
func (l slogLogger) Warn(m string)             { l.log.Warn(m) }
func (l slogLogger) Warnf(f string, a ...any)  { l.at(slog.LevelWarn, f, a) }
func (l slogLogger) Error(m string)            { l.log.Warn(m) }
func (l slogLogger) Errorf(f string, a ...any) { l.at(slog.LevelWarn, f, a) }

// at formats only when the level is on: Pion logs per relayed datagram.
func (l slogLogger) at(level slog.Level, f string, a []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(f, a...))
	}
}
