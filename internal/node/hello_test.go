package node

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lanft/lanft/internal/identity"
)

// TestSilentChannelIsALostConnection: a peer whose channel opens but never
// says its preamble (Chromium could hold a page's first message for good)
// ends the connection within helloWait as a lost one, which a sender dials
// again, not as a verdict on the peer.
func TestSilentChannelIsALostConnection(t *testing.T) {
	ours, theirs := net.Pipe()
	t.Cleanup(func() { ours.Close(); theirs.Close() })
	heard := make(chan []byte, 1)
	go func() { // the silent peer: it reads what comes and says nothing
		b, _ := io.ReadAll(theirs)
		heard <- b
	}()
	l := &link{cfg: &Config{Name: "laptop", Identity: identity.New()}, remote: "web-page", push: true}
	start := time.Now()
	err := authenticate(context.Background(), l.cfg, ours, l, true)
	took := time.Since(start)
	if err == nil {
		t.Fatal("authenticate with a silent peer succeeded")
	}
	if !errors.Is(err, ErrConnect) || !errors.As(err, new(noPreamble)) || !retryable(err) {
		t.Errorf("a silent peer's error is not a lost connection to dial again: %v", err)
	}
	if !strings.Contains(err.Error(), "web-page sent no lanft preamble within 5s") {
		t.Errorf("the error says %q", err)
	}
	if took < helloWait || took > helloWait+2*time.Second {
		t.Errorf("gave up after %s, want %s", took, helloWait)
	}
	if b := <-heard; !strings.HasPrefix(string(b), string(preambleMagic)) || len(b) != len(preambleMagic)+1 {
		t.Errorf("the peer heard %q, want our preamble's first bytes alone", b)
	}
}

// TestPreambleVerdictsAreNotDialedAgain: a peer that answers with another
// protocol is a verdict, which no second connection mends.
func TestPreambleVerdictsAreNotDialedAgain(t *testing.T) {
	ours, theirs := net.Pipe()
	t.Cleanup(func() { ours.Close(); theirs.Close() })
	go func() {
		buf := make([]byte, len(preambleMagic)+1)
		_, _ = io.ReadFull(theirs, buf)
		_, _ = theirs.Write([]byte("HTTP/1.1"))
	}()
	l := &link{cfg: &Config{Name: "laptop", Identity: identity.New()}, remote: "web-page", push: true}
	err := authenticate(context.Background(), l.cfg, ours, l, true)
	if err == nil || errors.As(err, new(noPreamble)) {
		t.Errorf("a peer speaking another protocol gives %v, want a verdict", err)
	}
}
