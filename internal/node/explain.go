package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lanft/lanft/rtc"
	"github.com/lanft/lanft/transfer"
)

// explain is an error's text for a person: what happened, without the
// chain of library internals that may trail it (a cancelled context is an
// interruption, not an error).
func explain(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, context.DeadlineExceeded):
		return "no connection within 30s: no network path between the two machines (a firewall, or different networks)"
	case errors.Is(err, rtc.ErrPeerGone):
		return "the connection failed while it was being set up (the other side left, or no network path was found)"
	case errors.Is(err, transfer.ErrInterrupted) && !errors.Is(err, transfer.ErrRemote):
		// Whatever the transport said (EOF, a reset, an SCTP abort), the
		// other side is gone or unreachable.
		return "the connection was lost"
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

// tookText is a done event's words: how long the transfer took and at
// what rate, or nothing when it moved no byte (the receiver had it all).
func tookText(moved int64, took time.Duration) string {
	if moved == 0 {
		return ""
	}
	return fmt.Sprintf("in %s (%s/s)", took.Round(100*time.Millisecond),
		transfer.FormatSize(int64(float64(moved)/max(took.Seconds(), 0.001))))
}
