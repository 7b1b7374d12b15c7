package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rivo/uniseg"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/transfer"
)

// output renders node events for a person (stderr: one line an event, and
// on a terminal a progress line) or for a script (--json: one JSON object
// a line on stdout, the schema in the README's "JSON events").
type output struct {
	json   bool
	stdout io.Writer
	stderr io.Writer
	tty    bool
	// onOnline, if set, is said in place of the first "online" event (share
	// prints what it shares only once the login was accepted).
	onOnline func(node.Event) string
	// inbound: the status and done lines are of files coming in (lanft up).
	inbound bool
	// outbound: the progress bar is of files going out (lanft send).
	outbound bool

	mu       sync.Mutex
	online   bool
	bar      *progressbar.ProgressBar // a receive's progress on a terminal
	sending  map[string]node.Event    // a share's progress per receiver
	status   string                   // the share's status line on screen
	lastJSON map[string]time.Time     // per peer, to thin progress events
	lastLine time.Time
}

func newOutput(asJSON bool, stdout, stderr io.Writer) *output {
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &output{json: asJSON, stdout: stdout, stderr: stderr, tty: tty,
		sending: map[string]node.Event{}, lastJSON: map[string]time.Time{}}
}

// jsonEvent is a node.Event with the fields a command adds to some events
// (the README lists which).
type jsonEvent struct {
	node.Event
	Extra map[string]any `json:"-"`
}

// MarshalJSON flattens Extra beside the event's fields.
func (e jsonEvent) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(e.Event)
	if err != nil || len(e.Extra) == 0 {
		return b, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range e.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

// emit writes one JSON event (in --json mode).
func (o *output) emit(e node.Event, extra map[string]any) {
	if !o.json {
		return
	}
	b, err := json.Marshal(jsonEvent{Event: e, Extra: extra})
	if err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stdout.Write(append(b, '\n'))
}

// say writes a line for a person (not in --json mode).
func (o *output) say(format string, args ...any) {
	if o.json {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sayLocked(format, args...)
}

func (o *output) sayLocked(format string, args ...any) {
	if o.bar != nil {
		o.bar.Clear()
	}
	if o.status != "" {
		fmt.Fprint(o.stderr, "\r\033[K")
	}
	fmt.Fprintf(o.stderr, format+"\n", args...)
	if o.status != "" {
		fmt.Fprint(o.stderr, o.status)
	}
}

// event is the node.Events callback.
func (o *output) event(e node.Event) {
	if o.json {
		if e.Kind == node.EventProgress {
			// At most ten progress lines a second per peer, plus the last one.
			o.mu.Lock()
			skip := time.Since(o.lastJSON[e.Peer]) < 100*time.Millisecond && e.Done < e.Size
			if !skip {
				o.lastJSON[e.Peer] = time.Now()
			}
			o.mu.Unlock()
			if skip {
				return
			}
		}
		o.emit(e, nil)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	who := transfer.DisplayName(e.Peer)
	switch e.Kind {
	case node.EventProgress:
		o.progressLocked(e)
	case node.EventOnline:
		switch {
		case !o.online && o.onOnline != nil:
			o.sayLocked("%s", o.onOnline(e))
		case !o.online:
			o.sayLocked("online as %s at %s", who, e.Host)
		default:
			o.sayLocked("online again at %s", e.Host)
		}
		o.online = true
	case node.EventPeer:
		o.sayLocked("%s: connected via %s", who, e.Path.Describe())
	case node.EventDone:
		delete(o.sending, e.Peer)
		o.redrawLocked()
		verb := "sent"
		if o.inbound {
			verb = "received"
		}
		line := fmt.Sprintf("%s: %s %s", who, verb, transfer.FormatSize(e.Transferred))
		if had := e.Size - e.Transferred; had > 0 {
			form := " (it had %s already)" // the receiver of a share had it
			if o.inbound {
				form = " (already had %s)"
			}
			line += fmt.Sprintf(form, transfer.FormatSize(had))
		}
		if e.Text != "" {
			line += " " + e.Text
		}
		o.sayLocked("%s", line)
	case node.EventRefused:
		o.sayLocked("%s: refused: %s", who, e.Text)
	case node.EventError:
		delete(o.sending, e.Peer)
		o.redrawLocked()
		if e.Peer == "" {
			o.sayLocked("%s", e.Text)
		} else {
			o.sayLocked("%s: %s", who, e.Text)
		}
	case node.EventInfo, node.EventVerify, node.EventAsk:
		o.sayLocked("%s", e.Text)
	}
}

// progressLocked shows progress on a terminal: a bar for a receive, one
// status line with every receiver for a share. Without a terminal nothing
// is drawn; the "done" line has the figures.
func (o *output) progressLocked(e node.Event) {
	if !o.tty {
		return
	}
	if o.onOnline == nil { // a receive or a send: one peer
		if o.bar == nil {
			o.bar = progressbar.NewOptions64(e.Size,
				progressbar.OptionSetWriter(o.stderr),
				progressbar.OptionShowBytes(true),
				progressbar.OptionShowTotalBytes(true),
				progressbar.OptionUseIECUnits(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionFullWidth(),
				progressbar.OptionSetDescription(o.barLabel(e.Path)),
			)
		}
		_ = o.bar.Set64(e.Done)
		return
	}
	o.sending[e.Peer] = e
	if time.Since(o.lastLine) < 100*time.Millisecond && e.Done < e.Size {
		return
	}
	o.lastLine = time.Now()
	o.redrawLocked()
}

// redrawLocked rewrites the share's status line: "sending: bob 45% of
// 1.0 GiB, carol 3% of 1.0 GiB".
func (o *output) redrawLocked() {
	if !o.tty || o.onOnline == nil {
		return
	}
	peers := make([]string, 0, len(o.sending))
	for p := range o.sending {
		peers = append(peers, p)
	}
	slices.Sort(peers)
	parts := make([]string, 0, len(peers))
	for _, p := range peers {
		e := o.sending[p]
		pct := 100 * float64(e.Done) / float64(max(e.Size, 1))
		parts = append(parts, fmt.Sprintf("%s %.0f%% of %s", transfer.DisplayName(p), pct, transfer.FormatSize(e.Size)))
	}
	status := ""
	if len(parts) > 0 {
		status = "sending: "
		if o.inbound {
			status = "receiving: "
		}
		status += strings.Join(parts, ", ")
		if w, _, err := term.GetSize(int(o.stderr.(*os.File).Fd())); err == nil && uniseg.StringWidth(status) >= w {
			status = truncateWidth(status, w-1)
		}
	}
	fmt.Fprint(o.stderr, "\r\033[K"+status)
	o.status = status
}

// finishBar ends the progress display: a receive's bar filled when it
// completed, left where it stopped when it did not.
func (o *output) finishBar(completed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bar != nil {
		if completed {
			_ = o.bar.Finish()
		} else {
			_ = o.bar.Exit()
		}
		fmt.Fprintln(o.stderr)
		o.bar = nil
	}
	if o.status != "" {
		fmt.Fprint(o.stderr, "\r\033[K")
		o.status = ""
	}
}

// padWidth pads s with spaces to w terminal columns (wide characters take
// two), for lined-up listings.
func padWidth(s string, w int) string {
	if n := uniseg.StringWidth(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// truncateWidth cuts s to at most w terminal columns.
func truncateWidth(s string, w int) string {
	out, width := "", 0
	g := uniseg.NewGraphemes(s)
	for g.Next() {
		if width+g.Width() > w {
			break
		}
		out += g.Str()
		width += g.Width()
	}
	return out
}

// barLabel is the progress bar's label: which way the bytes go, and the
// path they take.
func (o *output) barLabel(path node.Path) string {
	verb := "receiving"
	if o.outbound {
		verb = "sending"
	}
	if path == "" {
		return verb
	}
	return verb + " via " + path.Describe()
}
