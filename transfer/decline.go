package transfer

import (
	"fmt"
	"io"
)

// Decline ends a transfer before it starts: the sender, having decided not
// to send to this receiver (it was asked and said no), sends an ERROR frame
// in place of the MANIFEST. The receiver's Receive returns an error that
// wraps ErrRemote and ErrRejected and carries reason, which it shows as
// text (escaped), so a retry is never attempted.
func Decline(w io.Writer, reason string) error {
	if err := writeError(w, codeRejected, reason); err != nil {
		return fmt.Errorf("transfer: decline: %w", err)
	}
	return nil
}
