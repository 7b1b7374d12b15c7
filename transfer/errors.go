package transfer

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors. Every error returned by this package wraps at most one of
// them (plus ErrRemote when the peer reported the problem), so callers can
// branch with errors.Is while showing err.Error() to the user.
var (
	// ErrUnsafeName: a name in the manifest could escape the target folder,
	// hide what it is, or collide with another name.
	ErrUnsafeName = errors.New("transfer: unsafe file name")
	// ErrIntegrity: a file arrived with the wrong size or SHA-256.
	ErrIntegrity = errors.New("transfer: file arrived corrupted")
	// ErrRejected: the receiver declined the transfer.
	ErrRejected = errors.New("transfer: declined")
	// ErrProtocol: the peer sent a malformed, oversized or unexpected frame.
	ErrProtocol = errors.New("transfer: protocol violation")
	// ErrNoSpace: the target filesystem lacks room for the files.
	ErrNoSpace = errors.New("transfer: not enough free space")
	// ErrConflict: something already in the target folder is in the way
	// (a symbolic link, a file where a folder must go, ...).
	ErrConflict = errors.New("transfer: target folder conflict")
	// ErrInterrupted: the connection ended or the context was cancelled
	// mid-transfer. Partial files are kept and the next transfer resumes them.
	ErrInterrupted = errors.New("transfer: interrupted")
	// ErrSourceChanged: a shared file changed after NewSource hashed it.
	ErrSourceChanged = errors.New("transfer: shared file changed")
	// ErrRemote: the peer stopped the transfer and said why; the error text
	// carries its (escaped) message.
	ErrRemote = errors.New("transfer: peer stopped the transfer")
)

// tErr is an error whose user-facing text is msg. It matches the sentinels in
// kinds and the optional cause. Only msg (never the cause, which may hold
// local paths) is sent to the peer in an ERROR frame.
type tErr struct {
	msg   string
	kinds []error
	cause error
}

func (e *tErr) Error() string {
	if e.cause == nil {
		return e.msg
	}
	return e.msg + ": " + e.cause.Error()
}

func (e *tErr) Unwrap() []error {
	if e.cause == nil {
		return e.kinds
	}
	return append(e.kinds[:len(e.kinds):len(e.kinds)], e.cause)
}

func newErr(kind error, cause error, msg string) error {
	return &tErr{msg: msg, kinds: []error{kind}, cause: cause}
}

// refuse reports an unsafe name: `transfer: refusing "../x": path escapes the target folder`.
func refuse(name, reason string) error {
	return newErr(ErrUnsafeName, nil, "transfer: refusing "+quote(name)+": "+reason)
}

func protocolErr(msg string) error {
	return newErr(ErrProtocol, nil, "transfer: "+msg)
}

func conflict(p, why string) error {
	return newErr(ErrConflict, nil, "transfer: "+quote(p)+" "+why)
}

// maxQuoted bounds how much of a hostile name is repeated in an error text.
const maxQuoted = 200

// quote returns s in Go double-quoted form, every non-printable character
// escaped, cut to a readable length.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	i := maxQuoted
	for i > maxQuoted-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return strconv.Quote(s[:i]) + "..."
}

// DisplayName returns s ready to show to a user: unchanged when it is valid
// UTF-8 made only of printable characters (no control, format, bidi or
// zero-width characters, no quotes or backslashes), otherwise in Go
// double-quoted form with everything non-printable escaped, e.g.
// "a\x1b[1Ab" or "evil\u202etxt.exe". Names that passed ValidateManifest
// with ordinary characters are shown as they are.
func DisplayName(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if r == utf8.RuneError || r == '"' || r == '\\' || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// escapeText makes a peer-supplied message safe to print: non-printable runes
// and invalid bytes are escaped, the length is bounded.
func escapeText(s string) string {
	const max = 512
	var b strings.Builder
	for i, r := range s {
		if b.Len() >= max {
			b.WriteString("...")
			break
		}
		switch {
		case r == utf8.RuneError:
			b.WriteString(strconv.QuoteToASCII(s[i : i+1])[1:5])
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// Wire error codes carried in ERROR frames.
const (
	codeRejected   = "rejected"
	codeUnsafeName = "unsafe_name"
	codeIntegrity  = "integrity"
	codeNoSpace    = "no_space"
	codeProtocol   = "protocol"
	codeConflict   = "conflict"
	codeChanged    = "source_changed"
	codeAborted    = "aborted"
	codeFailed     = "failed"
)

var codeSentinels = []struct {
	code string
	err  error
}{
	{codeRejected, ErrRejected},
	{codeUnsafeName, ErrUnsafeName},
	{codeIntegrity, ErrIntegrity},
	{codeNoSpace, ErrNoSpace},
	{codeProtocol, ErrProtocol},
	{codeConflict, ErrConflict},
	{codeChanged, ErrSourceChanged},
	{codeAborted, ErrInterrupted},
}

// describeForPeer returns the code and the message to send to the peer for err.
// Messages of unclassified errors are not sent: they may name local paths.
func describeForPeer(err error) (code, msg string) {
	code = codeFailed
	for _, c := range codeSentinels {
		if errors.Is(err, c.err) {
			code = c.code
			break
		}
	}
	if code == codeFailed && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		code = codeAborted
	}
	var te *tErr
	if !errors.As(err, &te) {
		if code == codeAborted {
			return code, "cancelled"
		}
		return code, "local error on the peer"
	}
	return code, strings.TrimPrefix(te.msg, "transfer: ")
}

// remoteErr builds the local error for an ERROR frame from the peer ("sender"
// or "receiver").
func remoteErr(who, code, msg string) error {
	kinds := []error{ErrRemote}
	for _, c := range codeSentinels {
		if c.code == code {
			kinds = append(kinds, c.err)
			break
		}
	}
	return &tErr{msg: "transfer: the " + who + " stopped the transfer: " + escapeText(msg), kinds: kinds}
}
