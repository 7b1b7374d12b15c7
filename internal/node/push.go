package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/lanft/lanft/internal/direct"
	"github.com/lanft/lanft/transfer"
)

// The push offer: a sender (lanft send, a page) is the WebRTC initiator,
// as a receiver is, and sets flagPush in its preamble; the target (lanft
// up, a page) answers as a sharer does. After the preamble, framed as
// direct.WriteMessage (u16 big-endian length | JSON):
//
//	sender ──▶ {"v":1,"push":{"files":N,"bytes":B,"title":"...","text":"..."}}
//	target ──▶ {"v":1,"accept":true}
//	       or  {"v":1,"accept":false,"reason":"declined"|"timeout"|"busy"|"refused","message":"..."}
//
// Accepted files then take the path negotiation of a pull with the sender
// in the sharer's place (sharePath) and the target in the receiver's
// (receivePath), and the transfer protocol unchanged: the sender's
// Source.Serve, the target's transfer.Receive. A text is all in the offer:
// after the answer both close.

// PushVersion is the "v" of the push messages.
const PushVersion = 1

// MaxPushText bounds a text sent in a push offer (UTF-8 bytes).
const MaxPushText = 32 << 10

// Reasons of a push answer that does not accept.
const (
	ReasonDeclined = "declined" // the person said no
	ReasonTimeout  = "timeout"  // nobody answered in time
	ReasonBusy     = "busy"     // the target takes no more sends now
	ReasonRefused  = "refused"  // not trusted, or a changed key
)

// Errors of Send that the CLI turns into their own messages and exit codes.
var (
	ErrNotOnline = errors.New("not online")
	ErrDeclined  = errors.New("declined")
	ErrTimedOut  = errors.New("no answer in time")
	ErrBusy      = errors.New("busy")
	// ErrPushRefused: the target refused the send without asking anyone
	// (it takes sends only from trusted devices, or it knows this name
	// from another device), or this side refused the target's key.
	ErrPushRefused = errors.New("refused")
)

// pushOfferWait bounds the wait for the offer once the preamble is done;
// no person waits on it.
const pushOfferWait = 10 * time.Second

// PushAnswerWait bounds the sender's wait for the target's decision: a
// person is asked (and the target gives up after its own, shorter, time).
const PushAnswerWait = 3 * time.Minute

// PushOffer is what a sender offers: files (with their count, bytes and a
// title, as a share's Meta has them) or a text.
type PushOffer struct {
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
	Title string `json:"title,omitempty"`
	Text  string `json:"text,omitempty"`
	// Stream: the file is a stream of unknown size (standard input); Bytes
	// is 0 (an addition to DESIGN-19-20).
	Stream bool `json:"stream,omitempty"`
}

// IsText reports whether the offer is a text.
func (o PushOffer) IsText() bool { return o.Files == 0 && o.Text != "" }

// Describe is the offer in words for a question or a log line.
func (o PushOffer) Describe() string {
	if o.IsText() {
		return fmt.Sprintf("a text of %d characters", utf8.RuneCountInString(o.Text))
	}
	if o.Stream {
		return fmt.Sprintf("a stream of unknown size (standard input), saved as %s", transfer.DisplayName(o.Title))
	}
	return fmt.Sprintf("%d file(s), %s in total: %s", o.Files, transfer.FormatSize(o.Bytes), transfer.DisplayName(o.Title))
}

// check is the target's validation of an offer read from the network.
func (o PushOffer) check() error {
	switch {
	case o.Files < 0 || o.Bytes < 0:
		return errors.New("a negative count")
	case len(o.Text) > MaxPushText:
		return fmt.Errorf("a text of %d bytes, more than %d", len(o.Text), MaxPushText)
	case !utf8.ValidString(o.Text) || !utf8.ValidString(o.Title):
		return errors.New("a text that is not UTF-8")
	case o.Text != "" && o.Files != 0:
		return errors.New("both a text and files")
	case o.Text == "" && o.Files == 0:
		return errors.New("nothing to send")
	}
	return nil
}

type pushOfferMsg struct {
	V    int        `json:"v"`
	Push *PushOffer `json:"push"`
}

// PushAnswer is the target's decision.
type PushAnswer struct {
	V       int    `json:"v"`
	Accept  bool   `json:"accept"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// err is the sender's error for an answer that does not accept.
func (a PushAnswer) err(target string) error {
	if a.Accept {
		return nil
	}
	sentinel := ErrDeclined
	switch a.Reason {
	case ReasonTimeout:
		sentinel = ErrTimedOut
	case ReasonBusy:
		sentinel = ErrBusy
	case ReasonRefused:
		sentinel = ErrPushRefused
	}
	msg := a.Message
	if msg == "" {
		msg = fmt.Sprintf("%s did not accept (%s)", target, a.Reason)
	}
	return fmt.Errorf("%w: %s", sentinel, transfer.DisplayName(msg))
}

// pushFlag is this side's preamble flag for the push offer.
func (l *link) pushFlag() byte {
	if l.push {
		return flagPush
	}
	return 0
}

// remotePushes reports whether the remote's preamble set flagPush.
func (l *link) remotePushes() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.remoteFlags&flagPush != 0
}

// offerPush sends the offer and waits up to wait for the answer; rw is
// closed if the wait ends first.
func offerPush(ctx context.Context, rw io.ReadWriteCloser, o PushOffer, wait time.Duration) (PushAnswer, error) {
	if err := direct.WriteMessage(rw, pushOfferMsg{V: PushVersion, Push: &o}); err != nil {
		return PushAnswer{}, fmt.Errorf("node: send the push offer: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { rw.Close() })
	defer stop()
	var a PushAnswer
	if err := direct.ReadMessage(rw, &a); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return PushAnswer{}, fmt.Errorf("%w: no decision within %s", ErrTimedOut, wait)
		}
		return PushAnswer{}, fmt.Errorf("%w: the connection closed before an answer to the offer: %w", ErrConnect, err)
	}
	if a.V < 1 {
		return PushAnswer{}, fmt.Errorf("node: push answer of version %d", a.V)
	}
	return a, nil
}

// readPush reads and checks a sender's offer, within pushOfferWait.
func readPush(ctx context.Context, rw io.ReadWriteCloser) (PushOffer, error) {
	ctx, cancel := context.WithTimeout(ctx, pushOfferWait)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { rw.Close() })
	defer stop()
	var m pushOfferMsg
	if err := direct.ReadMessage(rw, &m); err != nil {
		return PushOffer{}, fmt.Errorf("node: read the push offer: %w", err)
	}
	if m.V < 1 || m.Push == nil {
		return PushOffer{}, errors.New("node: a push offer without an offer")
	}
	if err := m.Push.check(); err != nil {
		return PushOffer{}, fmt.Errorf("node: a push offer with %w", err)
	}
	return *m.Push, nil
}

// answerPush sends the target's decision.
func answerPush(w io.Writer, a PushAnswer) error {
	a.V = PushVersion
	if err := direct.WriteMessage(w, a); err != nil {
		return fmt.Errorf("node: answer the push offer: %w", err)
	}
	return nil
}
