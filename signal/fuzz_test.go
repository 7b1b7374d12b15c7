package signal

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/lanft/lanft/names"
)

// validFrames are client frames the server accepts; with errorCases they
// seed FuzzDecode.
var validFrames = []string{
	`{"type":"login","name":"alice"}`,
	`{"type":"login","name":"lan","lanft":{"v":1,"id":"peer-7f3a"}}`,
	`{"type":"offer","name":"alice","othername":"bob","offer":` + offerJSON + `}`,
	`{"type":"answer","name":"bob","othername":"alice","answer":` + answerJSON + `}`,
	`{"type":"candidate","name":"alice","othername":"bob","candidate":` + candidateJSON + `}`,
	`{"type":"leave","name":"alice","othername":"bob"}`,
	`{"type":"login","success":true}`,
	`{"type":"login","success":false,"message":"name \"bob\" is taken"}`,
	`{"type":"userlist","users":["alice","bob"],"peers":[{"name":"alice"},{"name":"bob","lanft":{"v":1}}]}`,
	`{"type":"updata","action":"login","name":"bob","lanft":{"v":1}}`,
	`{"type":"updata","action":"offline","name":"bob"}`,
	`{"type":"error","message":"unknown message type \"x\""}`,
	`{"TYPE":"login","Name":"case-insensitive keys"}`,
	`{"type":"offer","offer":{"a":1,"a":2},"offer":null}`,
	"\t{\"type\":\"x\"}\n",
}

func FuzzDecode(f *testing.F) {
	for _, s := range validFrames {
		f.Add([]byte(s))
	}
	for _, tt := range errorCases {
		f.Add([]byte(tt.frame))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Decode(%q) = %v, want ErrMalformed or ErrTooLarge", data, err)
			}
			return
		}
		if len(data) > MaxMessageSize || !utf8.Valid(data) || !json.Valid(data) {
			t.Fatalf("Decode accepted %q: over the limit, not UTF-8 or not one JSON value", data)
		}
		if m.Type == "" {
			t.Fatalf("Decode(%q) accepted a message without type", data)
		}
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(Decode(%q)): %v", data, err)
		}
		// The encoder escapes <, >, & and U+2028, so b may be longer than
		// data (and than MaxMessageSize): read it as the client does.
		m2, err := decode(b, maxServerMessage)
		if err != nil {
			t.Fatalf("re-decoding %s (from %q): %v", b, data, err)
		}
		if a, z := normalize(t, m), normalize(t, m2); !reflect.DeepEqual(a, z) {
			t.Fatalf("round trip changed the message:\n  in %q\n got %+v\nwant %+v", data, z, a)
		}
		if b2, _ := Encode(m2); string(b2) != string(b) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b, b2)
		}
	})
}

// normalize maps m to a form where equal JSON values compare equal: raw
// objects re-marshalled from their decoded value, empty lists as nil.
func normalize(t *testing.T, m Message) Message {
	raw := func(r json.RawMessage) json.RawMessage {
		if r == nil {
			return nil
		}
		b, err := json.Marshal(decodeAny(t, r))
		if err != nil {
			t.Fatalf("re-marshal %s: %v", r, err)
		}
		return b
	}
	m.Offer, m.Answer, m.Candidate, m.Meta = raw(m.Offer), raw(m.Answer), raw(m.Candidate), raw(m.Meta)
	if len(m.Users) == 0 {
		m.Users = nil
	}
	if len(m.Peers) == 0 {
		m.Peers = nil
	}
	for i := range m.Peers {
		m.Peers[i].Meta = raw(m.Peers[i].Meta)
	}
	return m
}

func FuzzCheckName(f *testing.F) {
	for _, tt := range nameCases {
		f.Add(tt.in)
	}
	for _, s := range []string{"Alice", "\uff21lice", "Jose\u0301", "JOS\u00c9", "Alice\u202Egnp.exe", "\u3164", "\U0001F469\u200D\U0001F4BB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckName(name)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("CheckName(%q) = %v, want ErrBadName", name, err)
			}
			if r := hiddenRune(err.Error()); r >= 0 {
				t.Fatalf("CheckName(%q): error %q shows %U unescaped", name, err, r)
			}
			return
		}
		n := utf8.RuneCountInString(name)
		switch {
		case !utf8.ValidString(name):
			t.Fatalf("accepted %q: not UTF-8", name)
		case n == 0 || n > MaxNameLength:
			t.Fatalf("accepted %q: %d runes", name, n)
		case !norm.NFC.IsNormalString(name):
			t.Fatalf("accepted %q: not NFC", name)
		case strings.TrimSpace(name) != name:
			t.Fatalf("accepted %q: leading or trailing space", name)
		}
		for _, r := range name {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || !unicode.IsPrint(r) && r != ' ' {
				t.Fatalf("accepted %q holding %U", name, r)
			}
		}
		// Of a name and its decomposed form, at most one gets in.
		if nfd := norm.NFD.String(name); nfd != name && CheckName(nfd) == nil {
			t.Fatalf("accepted both %q and its NFD form %q", name, nfd)
		}
		if k := names.Key(name); k == "" || names.Key(name) != k {
			t.Fatalf("names.Key(%q) = %q: empty or not deterministic", name, k)
		}
	})
}
