package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/lanft/lanft/internal/node"
	"github.com/lanft/lanft/transfer"
)

// output renders node events for a person (stderr, with a progress bar on
// a terminal) or for a script (--json: one JSON object a line on stdout).
type output struct {
	json   bool
	stdout io.Writer
	stderr io.Writer
	tty    bool

	mu       sync.Mutex
	bar      *progressbar.ProgressBar
	lastJSON time.Time
}

func newOutput(asJSON bool, stdout, stderr io.Writer) *output {
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &output{json: asJSON, stdout: stdout, stderr: stderr, tty: tty}
}

// emit writes one JSON event (in --json mode).
func (o *output) emit(v any) {
	b, err := json.Marshal(v)
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
	if o.bar != nil {
		o.bar.Clear()
	}
	fmt.Fprintf(o.stderr, format+"\n", args...)
}

// event is the node.Events callback.
func (o *output) event(e node.Event) {
	if o.json {
		if e.Kind == "progress" {
			// At most ten progress lines a second, plus the last one.
			o.mu.Lock()
			skip := time.Since(o.lastJSON) < 100*time.Millisecond && e.Done < e.Size
			if !skip {
				o.lastJSON = time.Now()
			}
			o.mu.Unlock()
			if skip {
				return
			}
		}
		o.emit(e)
		return
	}
	switch e.Kind {
	case "progress":
		o.progress(e.Done, e.Size, e.Path)
	case "online":
		o.say("online as %q at %s", e.Peer, e.Host)
	case "peer":
		o.say("%s: %s", e.Peer, e.Text)
	case "done":
		o.say("%s: sent %s", e.Peer, transfer.FormatSize(e.Size))
	case "error":
		o.say("%s: %s", e.Peer, e.Text)
	case "info", "verify":
		o.say("%s", e.Text)
	}
}

func (o *output) progress(done, total int64, path node.Path) {
	if !o.tty {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bar == nil {
		o.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(o.stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionSetDescription(describeProgress(path)),
		)
	}
	_ = o.bar.Set64(done)
}

func (o *output) finishBar() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bar != nil {
		_ = o.bar.Finish()
		fmt.Fprintln(o.stderr)
		o.bar = nil
	}
}

// describeProgress is the progress bar's label: what it does and the path.
func describeProgress(path node.Path) string {
	if path == "" {
		return "receiving"
	}
	return "receiving via " + path.Describe()
}
