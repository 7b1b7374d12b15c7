package node

import (
	"errors"
	"sync"
	"time"

	"github.com/lanft/lanft/names"
)

// ErrTooManyFirstContacts: a sharer answered as many first contacts as it
// answers in a while, under one name or in all.
var ErrTooManyFirstContacts = errors.New("too many first contacts")

// First contacts a sharer answers per window: per name (as names.Same
// compares names) and in all.
const (
	contactWindow     = time.Minute // the refusal says "the last minute"
	contactsPerName   = 5
	contactsPerWindow = 30
)

// contactLimiter bounds the first contacts (a device key seen for the
// first time under a name) that a sharer answers.
//
// Each first contact answered is one try for a host in the middle that
// sits between a receiver and this sharer with keys of its own: it holds
// the receiver's connection and tries sharer connections until the
// sharer's verification code matches the receiver's (identity's
// VerificationCode gives each try odds of 10^-6, and each try shows a
// code on the sharer's screen). The receiver gives it 10 s (nonceWait);
// this gives it 5 tries a minute per name, so at most about 5 x 10^-6 a
// receiver's attempt, however fast it is.
type contactLimiter struct {
	mu     sync.Mutex
	now    func() time.Time
	recent []contact // answered within the window, oldest first
}

type contact struct {
	name string
	at   time.Time
}

func newContactLimiter() *contactLimiter { return &contactLimiter{now: time.Now} }

// allow records a first contact from name and reports whether it is
// within the bounds.
func (c *contactLimiter) allow(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for len(c.recent) > 0 && now.Sub(c.recent[0].at) >= contactWindow {
		c.recent = c.recent[1:]
	}
	same := 0
	for _, r := range c.recent {
		if names.Same(r.name, name) {
			same++
		}
	}
	if same >= contactsPerName || len(c.recent) >= contactsPerWindow {
		return false
	}
	c.recent = append(c.recent, contact{name: name, at: now})
	return true
}
