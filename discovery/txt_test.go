package discovery

import (
	"errors"
	"strings"
	"testing"
)

var validTXT = []string{"v=1", "id=ab12-CD", "name=Alice's laptop", "prio=5", "port=8443", "host=1", "since=1700000000000"}

var txtTests = []struct {
	name    string
	txt     []string
	want    record
	wantErr string // substring; "" means success
}{
	{name: "valid", txt: validTXT,
		want: record{ID: "ab12-CD", Name: "Alice's laptop", Priority: 5, Port: 8443, Host: true, HostSince: 1700000000000}},
	{name: "not host", txt: []string{"v=1", "id=x", "name=", "prio=-3", "port=1", "host=0", "since=0"},
		want: record{ID: "x", Priority: -3, Port: 1}},
	{name: "order, key case, unknown and empty keys", txt: []string{"SINCE=0", "Host=0", "port=65535", "prio=0", "name=Bob", "ID=b", "V=1", "future=whatever", "flag", "=orphan"},
		want: record{ID: "b", Name: "Bob", Port: 65535}},
	{name: "first occurrence wins", txt: []string{"v=1", "id=a", "id=b", "name=n", "prio=0", "port=9", "host=0", "since=0", "port=bogus"},
		want: record{ID: "a", Name: "n", Port: 9}},
	{name: "unicode name", txt: []string{"v=1", "id=a", "name=Zoë 🙂 東京", "prio=0", "port=9", "host=0", "since=0"},
		want: record{ID: "a", Name: "Zoë 🙂 東京", Port: 9}},
	{name: "name may hold =", txt: []string{"v=1", "id=a", "name=a=b", "prio=0", "port=9", "host=0", "since=0"},
		want: record{ID: "a", Name: "a=b", Port: 9}},

	{name: "empty", txt: nil, wantErr: `missing "v"`},
	{name: "newer major version", txt: []string{"v=2", "id=a"}, wantErr: "unsupported protocol version"},
	{name: "version zero", txt: []string{"v=0"}, wantErr: "unsupported protocol version"},
	{name: "version not a number", txt: []string{"v=1.0"}, wantErr: "bad number"},
	{name: "version without value", txt: []string{"v", "id=a"}, wantErr: "bad number"},
	{name: "missing id", txt: []string{"v=1", "name=", "prio=0", "port=9", "host=0", "since=0"}, wantErr: `missing "id"`},
	{name: "id with dot", txt: []string{"v=1", "id=a.b", "name=", "prio=0", "port=9", "host=0", "since=0"}, wantErr: "only letters"},
	{name: "id too long", txt: []string{"v=1", "id=" + strings.Repeat("a", 33), "name=", "prio=0", "port=9", "host=0", "since=0"}, wantErr: "1-32"},
	{name: "missing name", txt: []string{"v=1", "id=a", "prio=0", "port=9", "host=0", "since=0"}, wantErr: `missing "name"`},
	{name: "name with escape", txt: []string{"v=1", "id=a", "name=a\x1b[1Ab", "prio=0", "port=9", "host=0", "since=0"}, wantErr: "U+001B"},
	{name: "name with bidi override", txt: []string{"v=1", "id=a", "name=txt\u202Eexe", "prio=0", "port=9", "host=0", "since=0"}, wantErr: "U+202E"},
	{name: "name with zero width", txt: []string{"v=1", "id=a", "name=a\u200Bb", "prio=0", "port=9", "host=0", "since=0"}, wantErr: "U+200B"},
	{name: "name with newline", txt: []string{"v=1", "id=a", "name=a\nb", "prio=0", "port=9", "host=0", "since=0"}, wantErr: "U+000A"},
	{name: "name not UTF-8", txt: []string{"v=1", "id=a", "name=a\xffb", "prio=0", "port=9", "host=0", "since=0"}, wantErr: "UTF-8"},
	{name: "name too long", txt: []string{"v=1", "id=a", "name=" + strings.Repeat("é", 33), "prio=0", "port=9", "host=0", "since=0"}, wantErr: "at most 64"},
	{name: "port zero", txt: []string{"v=1", "id=a", "name=", "prio=0", "port=0", "host=0", "since=0"}, wantErr: "port"},
	{name: "port too big", txt: []string{"v=1", "id=a", "name=", "prio=0", "port=65536", "host=0", "since=0"}, wantErr: "port"},
	{name: "port with sign", txt: []string{"v=1", "id=a", "name=", "prio=0", "port=+80", "host=0", "since=0"}, wantErr: "bad number"},
	{name: "prio beyond 32 bits", txt: []string{"v=1", "id=a", "name=", "prio=2147483648", "port=9", "host=0", "since=0"}, wantErr: "prio"},
	{name: "prio huge", txt: []string{"v=1", "id=a", "name=", "prio=99999999999999999999", "port=9", "host=0", "since=0"}, wantErr: "prio"},
	{name: "host not 0 or 1", txt: []string{"v=1", "id=a", "name=", "prio=0", "port=9", "host=yes", "since=0"}, wantErr: "host"},
	{name: "host claim without since", txt: []string{"v=1", "id=a", "name=", "prio=0", "port=9", "host=1", "since=0"}, wantErr: "positive since"},
	{name: "since without claim", txt: []string{"v=1", "id=a", "name=", "prio=0", "port=9", "host=0", "since=5"}, wantErr: "without a host claim"},
	{name: "negative since", txt: []string{"v=1", "id=a", "name=", "prio=0", "port=9", "host=1", "since=-5"}, wantErr: "since"},
	{name: "missing since", txt: []string{"v=1", "id=a", "name=", "prio=0", "port=9", "host=0"}, wantErr: `missing "since"`},
	{name: "too many strings", txt: append(append([]string{}, validTXT...), make([]string, 30)...), wantErr: "at most 32"},
	{name: "string too long", txt: append([]string{"x=" + strings.Repeat("a", 300)}, validTXT...), wantErr: "at most 255"},
}

func TestParseTXT(t *testing.T) {
	for _, tt := range txtTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTXT(tt.txt)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseTXT(%q) = %+v, %v; want error containing %q", tt.txt, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseTXT(%q): %v", tt.txt, err)
			}
			if got != tt.want {
				t.Fatalf("parseTXT(%q) = %+v, want %+v", tt.txt, got, tt.want)
			}
		})
	}
}

func TestParseTXTVersionIsSentinel(t *testing.T) {
	_, err := parseTXT([]string{"v=7", "id=a", "name=", "prio=0", "port=9", "host=0", "since=0"})
	if !errors.Is(err, errVersion) {
		t.Fatalf("got %v, want errVersion", err)
	}
}

func TestTXTRoundTrip(t *testing.T) {
	for _, r := range []record{
		{ID: "a", Port: 1},
		{ID: "0123456789abcdef0123456789ABCDEF", Name: strings.Repeat("x", 64), Priority: -1 << 31, Port: 65535, Host: true, HostSince: 1<<63 - 1},
		{ID: "z-9", Name: "Zoë", Priority: 1<<31 - 1, Port: 80, Host: true, HostSince: 1},
	} {
		if err := r.validate(); err != nil {
			t.Fatalf("validate(%+v): %v", r, err)
		}
		got, err := parseTXT(r.txt())
		if err != nil || got != r {
			t.Fatalf("parseTXT(txt(%+v)) = %+v, %v", r, got, err)
		}
		for _, s := range r.txt() {
			if len(s) > maxTXTItemLen {
				t.Fatalf("txt string of %d bytes: %q", len(s), s)
			}
		}
	}
}

// FuzzParseTXT feeds arbitrary TXT strings (joined by NUL in the corpus) to
// the decoder: it must not panic, and what it accepts must be valid and
// survive a round trip.
func FuzzParseTXT(f *testing.F) {
	for _, tt := range txtTests {
		f.Add(strings.Join(tt.txt, "\x00"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		items := strings.Split(s, "\x00")
		r, err := parseTXT(items)
		if err != nil {
			return
		}
		if err := r.validate(); err != nil {
			t.Fatalf("accepted an invalid record %+v: %v", r, err)
		}
		again, err := parseTXT(r.txt())
		if err != nil || again != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
		}
	})
}
