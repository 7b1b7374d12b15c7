package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/transfer"
)

// askTimeout is how long a question of --ask waits before declining.
const askTimeout = 2 * time.Minute

// asker puts each receiver of `lanft share --ask` to the person sharing,
// one at a time: a y/N question on the terminal, or with --json an "ask"
// event answered by a line on stdin, {"peer":"NAME","accept":true}.
type asker struct {
	out *output
	mu  sync.Mutex // one question at a time

	start sync.Once
	in    *bufio.Reader
	lines chan string // closed at the end of stdin
	// timeout is how long a question waits (0: askTimeout).
	timeout time.Duration
}

func newAsker(c *cli.Context, out *output) *asker {
	return &asker{out: out, in: bufio.NewReader(c.App.Reader), lines: make(chan string)}
}

// read delivers stdin's lines. Its goroutine ends with stdin (the process
// exits with it blocked otherwise, as any reader of a terminal does).
func (a *asker) read() {
	for {
		line, err := a.in.ReadString('\n')
		if line != "" {
			a.lines <- strings.TrimSpace(line)
		}
		if err != nil {
			close(a.lines)
			return
		}
	}
}

// ask is node.Config.Ask.
func (a *asker) ask(ctx context.Context, r node.Request) bool {
	who := transfer.DisplayName(r.Peer)
	seen := "seen before"
	if r.First {
		seen = "first contact"
	}
	text := fmt.Sprintf("%s (device %s, %s) wants the files; verification code %s (it must match on %s's screen)", who, r.Device, seen, r.Code, who)
	accept, timedOut := a.question(ctx, node.Event{Kind: node.EventAsk, Peer: r.Peer, Device: r.Device, Code: r.Code, Text: text}, nil,
		fmt.Sprintf("Send to %s? [y/N] ", who))
	if timedOut {
		a.out.say("no answer within %s: declined", a.wait())
	}
	return accept
}

// wait is how long a question waits before declining.
func (a *asker) wait() time.Duration {
	if a.timeout > 0 {
		return a.timeout
	}
	return askTimeout
}

// question puts e to the person (with --json as the event with extra, a
// line on stdin deciding) and waits for y/N, declining when the time is
// up (timedOut) or stdin ends.
func (a *asker) question(ctx context.Context, e node.Event, extra map[string]any, prompt string) (accept, timedOut bool) {
	a.start.Do(func() { go a.read() })
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.out.json {
		a.out.emit(e, extra)
	} else {
		a.out.say("%s", e.Text)
		a.out.mu.Lock()
		fmt.Fprint(a.out.stderr, prompt)
		a.out.mu.Unlock()
	}
	timeout := time.NewTimer(a.wait())
	defer timeout.Stop()
	for {
		select {
		case line, ok := <-a.lines:
			if !ok {
				a.out.say("no answer (standard input closed): declined")
				return false, false
			}
			if !a.out.json {
				a := strings.ToLower(line)
				return a == "y" || a == "yes", false
			}
			var d struct {
				Peer   string `json:"peer"`
				Accept bool   `json:"accept"`
			}
			if json.Unmarshal([]byte(line), &d) == nil && d.Peer == e.Peer {
				return d.Accept, false
			}
			a.out.emit(node.Event{Kind: node.EventError, Peer: e.Peer, Text: fmt.Sprintf(`expected {"peer":%q,"accept":true|false} on stdin`, e.Peer)}, nil)
		case <-timeout.C:
			if !a.out.json {
				a.out.mu.Lock()
				fmt.Fprintln(a.out.stderr)
				a.out.mu.Unlock()
			}
			return false, true
		case <-ctx.Done():
			if !a.out.json {
				a.out.mu.Lock()
				fmt.Fprintln(a.out.stderr)
				a.out.mu.Unlock()
			}
			return false, false
		}
	}
}
