package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rivo/uniseg"

	"github.com/lanft/lanft/internal/node"
)

// TestTableLinesUpWideNames: a listing lines up by display width, so names
// with wide (CJK) characters or emoji do not push their columns out.
func TestTableLinesUpWideNames(t *testing.T) {
	var b bytes.Buffer
	printTable(&b, [][]string{
		{"NAME", "ROLE", "SHARES"},
		{"alice", "share", "a.txt"},
		{"会议室", "share", "海滩.jpg"},
		{"bob🚀", "receive", ""},
	})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	col := -1
	for _, l := range lines {
		i := strings.Index(l, "share")
		if i < 0 {
			i = strings.Index(l, "ROLE")
		}
		if i < 0 {
			i = strings.Index(l, "receive")
		}
		w := uniseg.StringWidth(l[:i])
		if col >= 0 && w != col {
			t.Fatalf("column 2 starts at width %d, want %d:\n%s", w, col, b.String())
		}
		col = w
	}
	if got := padWidth("海滩", 6); uniseg.StringWidth(got) != 6 {
		t.Fatalf("padWidth(海滩, 6) is %d columns wide", uniseg.StringWidth(got))
	}
}

// TestJSONEventKinds: every event kind prints, with --json, as the word the
// README's "JSON events" table documents, and the table documents no kind
// lanft does not print.
func TestJSONEventKinds(t *testing.T) {
	kinds := []node.EventKind{
		node.EventSharing, node.EventPage, node.EventOnline, node.EventInfo, node.EventVerify, node.EventAsk,
		node.EventPeer, node.EventManifest, node.EventProgress, node.EventRefused, node.EventDone, node.EventError,
		node.EventPeers,
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### JSON events")
	if !ok {
		t.Fatal(`README.md has no "JSON events" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z]+)` \\| (share|receive|both|peers) \\|").FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	var printed []string
	for _, k := range kinds {
		var b bytes.Buffer
		o := newOutput(true, &b, &bytes.Buffer{})
		o.event(node.Event{Kind: k})
		var e map[string]any
		if err := json.Unmarshal(b.Bytes(), &e); err != nil {
			t.Fatalf("kind %q printed %q: %v", k, b.String(), err)
		}
		word, _ := e["event"].(string)
		if !slices.Contains(documented, word) {
			t.Errorf("kind %q prints as %q, which the README's JSON events table does not list (it lists %v)", k, word, documented)
		}
		printed = append(printed, word)
	}
	for _, w := range documented {
		if !slices.Contains(printed, w) {
			t.Errorf("the README documents the event %q, which no node.EventKind prints", w)
		}
	}
}

// TestBarSaysWhichWay: the progress bar of lanft send says sending, that
// of lanft receive receiving, each with the path.
func TestBarSaysWhichWay(t *testing.T) {
	var stderr bytes.Buffer
	o := newOutput(false, &stderr, &stderr)
	if got, want := o.barLabel(node.PathTCP), "receiving via direct TCP with TLS 1.3"; got != want {
		t.Errorf("receive: %q, want %q", got, want)
	}
	o.outbound = true
	if got, want := o.barLabel(node.PathTCP), "sending via direct TCP with TLS 1.3"; got != want {
		t.Errorf("send: %q, want %q", got, want)
	}
	if got := o.barLabel(""); got != "sending" {
		t.Errorf("send, no path yet: %q, want sending", got)
	}
}
