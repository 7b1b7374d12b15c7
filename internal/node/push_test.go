package node

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/direct"
)

// TestPushExchange runs the push offer and each answer over a net.Pipe:
// the target reads the offer as sent, and the sender gets the error of
// each reason.
func TestPushExchange(t *testing.T) {
	tests := []struct {
		name   string
		offer  PushOffer
		answer PushAnswer
		want   error
	}{
		{name: "files accepted", offer: PushOffer{Files: 2, Bytes: 1 << 20, Title: "photos"}, answer: PushAnswer{Accept: true}},
		{name: "text accepted", offer: PushOffer{Text: "héllo\nworld"}, answer: PushAnswer{Accept: true}},
		{name: "declined", offer: PushOffer{Text: "x"}, answer: PushAnswer{Reason: ReasonDeclined, Message: "bob declined"}, want: ErrDeclined},
		{name: "timeout", offer: PushOffer{Text: "x"}, answer: PushAnswer{Reason: ReasonTimeout}, want: ErrTimedOut},
		{name: "busy", offer: PushOffer{Text: "x"}, answer: PushAnswer{Reason: ReasonBusy}, want: ErrBusy},
		{name: "refused", offer: PushOffer{Files: 1, Bytes: 1}, answer: PushAnswer{Reason: ReasonRefused, Message: "not trusted"}, want: ErrPushRefused},
		{name: "unknown reason is a decline", offer: PushOffer{Text: "x"}, answer: PushAnswer{Reason: "later"}, want: ErrDeclined},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			got := make(chan PushOffer, 1)
			errc := make(chan error, 1)
			go func() {
				o, err := readPush(context.Background(), b)
				if err == nil {
					got <- o
					err = answerPush(b, tt.answer)
				}
				errc <- err
			}()
			ans, err := offerPush(context.Background(), a, tt.offer, 5*time.Second)
			if err != nil {
				t.Fatalf("offerPush: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("target: %v", err)
			}
			if o := <-got; o != tt.offer {
				t.Fatalf("target read %+v, want %+v", o, tt.offer)
			}
			err = ans.err("bob")
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("answer error %v, want %v", err, tt.want)
			}
			if tt.answer.Message != "" && !strings.Contains(err.Error(), tt.answer.Message) {
				t.Fatalf("answer error %q lacks the target's words %q", err, tt.answer.Message)
			}
		})
	}
}

// TestPushOfferRefusesBadOffers: the target checks what it reads.
func TestPushOfferRefusesBadOffers(t *testing.T) {
	for name, o := range map[string]PushOffer{
		"nothing":       {},
		"both":          {Files: 1, Bytes: 1, Text: "x"},
		"negative":      {Files: -1},
		"text too long": {Text: strings.Repeat("a", MaxPushText+1)},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			go direct.WriteMessage(a, pushOfferMsg{V: PushVersion, Push: &o})
			if _, err := readPush(context.Background(), b); err == nil {
				t.Fatalf("readPush accepted %+v", o)
			}
		})
	}
}

// TestPushAnswerWaitBounded: a target that never answers is a timeout,
// within the bound.
func TestPushAnswerWaitBounded(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	go func() { _, _ = readPush(context.Background(), b) }()
	start := time.Now()
	_, err := offerPush(context.Background(), a, PushOffer{Text: "x"}, 200*time.Millisecond)
	if !errors.Is(err, ErrTimedOut) {
		t.Fatalf("got %v, want ErrTimedOut", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the wait took %v", d)
	}
}

// FuzzReadPush: whatever a sender writes, the target's reader returns an
// offer that passes its checks or an error, and never panics.
func FuzzReadPush(f *testing.F) {
	for _, o := range []PushOffer{{Files: 2, Bytes: 1 << 20, Title: "photos"}, {Text: "hi"}, {}, {Files: 1, Text: "x"}} {
		b, _ := json.Marshal(pushOfferMsg{V: PushVersion, Push: &o})
		f.Add(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...))
	}
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, b := net.Pipe()
		defer b.Close()
		go func() {
			a.Write(raw)
			a.Close()
		}()
		o, err := readPush(context.Background(), b)
		if err == nil {
			if cerr := o.check(); cerr != nil {
				t.Fatalf("readPush returned an offer that fails its checks: %v", cerr)
			}
		}
	})
}
