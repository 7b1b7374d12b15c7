package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lanft/lanft/internal/netns"
	"github.com/lanft/lanft/internal/node"
)

// TestShowPage: a LAN instance tells where its browser page is, with a QR
// code of the address for a person and a "page" event for a script.
func TestShowPage(t *testing.T) {
	hosts := netns.NewLAN(t, 1)
	var lan *node.LAN
	if err := hosts.Do(1, func() (err error) {
		lan, err = node.NewLAN(node.LANConfig{Name: "t", Interfaces: []string{hosts.Iface(1)}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // Run with a cancelled context closes the listeners
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		lan.Run(ctx)
	})
	urls := lan.PageURLs()
	if want := "http://" + hosts.Addr(1).String() + ":"; len(urls) != 1 || !strings.HasPrefix(urls[0], want) || !strings.HasSuffix(urls[0], "/") {
		t.Fatalf("page URLs %v, want one %s...", urls, want)
	}

	var stdout, stderr bytes.Buffer
	showPage(newOutput(false, &stdout, &stderr), lan)
	if got := stderr.String(); !strings.Contains(got, "in a browser on the LAN: "+urls[0]) || !strings.Contains(got, "█▀") {
		t.Errorf("human output lacks the URL or the QR code:\n%s", got)
	}

	stdout.Reset()
	showPage(newOutput(true, &stdout, &stderr), lan)
	var ev struct{ Event, URL string }
	if err := json.Unmarshal(stdout.Bytes(), &ev); err != nil || ev.Event != "page" || ev.URL != urls[0] {
		t.Errorf("--json output %q: %v", stdout.String(), err)
	}

	stdout.Reset()
	stderr.Reset()
	showPage(newOutput(false, &stdout, &stderr), node.StaticHost("ws://10.0.0.1:1/ws"))
	if stdout.Len()+stderr.Len() != 0 {
		t.Errorf("--signal has no page to show, yet: %q %q", stdout.String(), stderr.String())
	}
}
