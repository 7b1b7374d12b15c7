package transfer

import (
	"encoding/json"
	"fmt"
	"io"
)

// Decline ends a transfer before it starts: the sender, having decided not
// to send to this receiver (it was asked and said no), sends an ERROR frame
// in place of the MANIFEST. The receiver's Receive returns an error that
// wraps ErrRemote and ErrRejected and carries reason, which it shows as
// text (escaped), so a retry is never attempted.
func Decline(w io.Writer, reason string) error {
	if len(reason) > maxErrorLen/2 {
		reason = reason[:maxErrorLen/2]
	}
	b, err := json.Marshal(errorPayload{Code: codeRejected, Message: reason})
	if err != nil {
		return fmt.Errorf("transfer: decline: %w", err)
	}
	if err := writeFrame(w, frameError, b); err != nil {
		return fmt.Errorf("transfer: decline: %w", err)
	}
	return nil
}
