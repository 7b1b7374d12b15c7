package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lanft/lanft/internal/host"
	"github.com/lanft/lanft/internal/netns"
	"github.com/lanft/lanft/internal/node"
)

// TestShowPage: a LAN instance tells where its browser page is, with a QR
// code of the address for a person and a "page" event for a script.
func TestShowPage(t *testing.T) {
	hosts := netns.NewLAN(t, 1)
	var lan *host.LAN
	if err := hosts.Do(1, func() (err error) {
		lan, err = host.NewLAN(host.LANConfig{Name: "t", Interfaces: []string{hosts.Iface(1)}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // Run with a cancelled context closes the listeners
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		lan.Run(ctx)
	})
	// The LAN address first (the one shown, and in the QR code), then
	// loopback's for a browser on this machine, all on one port; nothing
	// else.
	urls := lan.PageURLs()
	port := strconv.Itoa(lan.Port())
	if want := "http://" + hosts.Addr(1).String() + ":" + port + "/"; len(urls) == 0 || urls[0] != want {
		t.Fatalf("page URLs %v, want %s first", urls, want)
	}
	if want := "http://127.0.0.1:" + port + "/"; !slices.Contains(urls, want) {
		t.Errorf("page URLs %v lack %s", urls, want)
	}
	for _, u := range urls[1:] {
		if !strings.HasPrefix(u, "http://127.0.0.1:") && !strings.HasPrefix(u, "http://[::1]:") {
			t.Errorf("page URL %s is neither the LAN address nor loopback", u)
		}
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
