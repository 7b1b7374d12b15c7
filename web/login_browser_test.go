package web_test

import (
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lanft/lanft/internal/netns"
	"github.com/lanft/lanft/web"
)

// refusingHost is a signaling host that refuses the first login with
// message and code ("" for none, as an older host) and accepts every
// later one. It sends each login's name on names (buffered).
func refusingHost(t *testing.T, message, code string, names chan<- string) http.Handler {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the browser is gone, which ends every connection
	var mu sync.Mutex
	refused := false
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer c.Close()
		for {
			var m struct{ Type, Name string }
			if err := c.ReadJSON(&m); err != nil {
				return
			}
			if m.Type != "login" {
				continue
			}
			names <- m.Name
			mu.Lock()
			first := !refused
			refused = true
			mu.Unlock()
			if !first {
				c.WriteJSON(map[string]any{"type": "login", "success": true})
				c.WriteJSON(map[string]any{"type": "userlist", "users": []string{m.Name}})
				continue
			}
			reply := map[string]any{"type": "login", "success": false, "message": message}
			errMsg := map[string]any{"type": "error", "message": "login failed: " + message}
			if code != "" {
				reply["lanft"] = map[string]any{"code": code}
				errMsg["lanft"] = map[string]any{"code": code}
			}
			c.WriteJSON(reply)
			c.WriteJSON(errMsg)
		}
	})
}

// TestBrowserTakesAnotherNameWhenTaken: a page whose login is refused
// because its name is taken logs in again under another name. It knows
// that by the refusal's code (lanft.code "name_taken"), whatever the
// words; only a refusal without a code (an older host) is read by its
// words; a refusal with another code is shown, not taken for a name clash.
func TestBrowserTakesAnotherNameWhenTaken(t *testing.T) {
	lan := netns.NewLAN(t, 2)
	tests := []struct {
		name, message, code string
		renames             bool
	}{
		{"code, other words", "that name is in use", "name_taken", true},
		{"another code, words of a clash", `name "web-x" is taken too often: slow down`, "rate_limited", false},
		{"older host, no code", `name "web-x" is too close to "web-y", who is online`, "", true},
		{"older host, other words", "the room is full", "", false},
	}
	urls := make([]string, len(tests))
	logins := make([]chan string, len(tests))
	for i, tt := range tests {
		logins[i] = make(chan string, 16)
		h := refusingHost(t, tt.message, tt.code, logins[i])
		page, err := web.New(web.Config{Signal: h, Admits: func(*http.Request) bool { return true }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { page.Close() })
		urls[i] = "http://" + listenOn(t, lan, 1, page) + "/"
	}
	b := startBrowser(t, lan, 2)
	renamed := regexp.MustCompile(`^web-[0-9a-z]{4}-[0-9a-f]{4}$`)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := openPage(t, b, urls[i])
			first := nextLogin(t, logins[i])
			if !tt.renames {
				p.waitJS(`[...document.querySelectorAll('#log li.error')].some(e => e.textContent.startsWith('login refused: '))`, 20*time.Second)
				select {
				case name := <-logins[i]:
					t.Fatalf("the page logged in again as %q after a refusal that is no name clash", name)
				default:
				}
				return
			}
			p.waitJS(`document.body.dataset.online`, 20*time.Second)
			second := nextLogin(t, logins[i])
			if !renamed.MatchString(second) || !strings.HasPrefix(second, first+"-") {
				t.Fatalf("refused as %q, the page logged in as %q, not as its name with a suffix", first, second)
			}
			if got := p.name(); got != second {
				t.Fatalf("the page says it is online as %q, logged in as %q", got, second)
			}
			t.Logf("refused as %s (%q), online as %s", first, tt.message, second)
		})
	}
}

// nextLogin is the name of the next login a host saw.
func nextLogin(t *testing.T, logins <-chan string) string {
	t.Helper()
	select {
	case name := <-logins:
		return name
	case <-time.After(20 * time.Second):
		t.Fatal("the page did not log in within 20 s")
		return ""
	}
}
