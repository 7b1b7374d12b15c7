package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// closeOnCancel closes conn when ctx is done, if conn is an io.Closer, so
// that blocked reads and writes end. The returned stop func must be called
// exactly once; it cancels the hook, or waits for a close already running.
func closeOnCancel(ctx context.Context, conn io.ReadWriter) (stop func()) {
	c, ok := conn.(io.Closer)
	if !ok {
		return func() {}
	}
	done := make(chan struct{})
	stopHook := context.AfterFunc(ctx, func() {
		defer close(done)
		c.Close()
	})
	return func() {
		if !stopHook() {
			<-done
		}
	}
}

// errorPayload is the JSON of an ERROR frame.
type errorPayload struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// sendError tells the peer why the transfer stops. Best effort: the
// connection may already be gone.
func sendError(w io.Writer, err error) error {
	code, msg := describeForPeer(err)
	return writeError(w, code, msg)
}

// writeError writes an ERROR frame, its message cut to fit.
func writeError(w io.Writer, code, msg string) error {
	if len(msg) > maxErrorLen/2 {
		msg = msg[:maxErrorLen/2]
	}
	b, err := json.Marshal(errorPayload{Code: code, Message: msg})
	if err != nil {
		return err
	}
	return writeFrame(w, frameError, b)
}

// parseError turns the payload of a peer's ERROR frame into a local error.
func parseError(who string, p []byte) error {
	var e errorPayload
	if err := json.Unmarshal(p, &e); err != nil {
		return newErr(ErrProtocol, err, fmt.Sprintf("transfer: malformed ERROR frame from the %s", who))
	}
	return remoteErr(who, e.Code, e.Message)
}

func loggerOr(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// hashN feeds up to n bytes of r into w through buf, checking ctx between
// chunks, and returns how many bytes it read. It stops early only at EOF.
func hashN(ctx context.Context, w io.Writer, r io.Reader, n int64, buf []byte) (int64, error) {
	var done int64
	for done < n {
		if err := ctx.Err(); err != nil {
			return done, context.Cause(ctx)
		}
		chunk := buf
		if rest := n - done; rest < int64(len(chunk)) {
			chunk = chunk[:rest]
		}
		k, err := r.Read(chunk)
		w.Write(chunk[:k])
		done += int64(k)
		if err == io.EOF {
			return done, nil
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// sumN returns the SHA-256 of up to n bytes of r, and how many bytes it
// read: fewer than n only at EOF (see hashN).
func sumN(ctx context.Context, r io.Reader, n int64, buf []byte) (int64, [32]byte, error) {
	h := sha256.New()
	k, err := hashN(ctx, h, r, n, buf)
	var sum [32]byte
	h.Sum(sum[:0])
	return k, sum, err
}

// FormatSize renders a size for people: "1.5 GiB".
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
