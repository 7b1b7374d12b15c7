package names

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

// sameCases are pairs of names that are one name; they seed FuzzKey.
var sameCases = []struct {
	name string
	a, b string
}{
	{"identical", "bob", "bob"},
	{"capitalised", "bob", "Bob"},
	{"upper case", "bob", "BOB"},
	{"German sharp s", "straße", "STRASSE"},
	{"fullwidth letter", "alice", "\uff41lice"},
	{"all fullwidth", "alice", "\uff41\uff4c\uff49\uff43\uff45"},
	{"fullwidth capitals", "alice", "\uff21\uff2c\uff29\uff23\uff25"},
	{"Cyrillic a", "alice", "\u0430lice"},
	{"Cyrillic capital A", "Alice", "\u0410lice"},
	{"Cyrillic o and e", "bob", "b\u043eb"},
	{"Greek omicron", "bob", "b\u03bfb"},
	{"dotless i", "alice", "al\u0131ce"},
	{"Cyrillic i", "alice", "al\u0456ce"},
	{"digit zero for o", "bob", "b0b"},
	{"digit one for l", "carol", "caro1"},
	{"pipe for l", "carol", "caro|"},
	{"rn for m", "emma", "ernrna"},
	{"ligature", "fiona", "\ufb01ona"},
	{"roman numeral", "viii", "\u2167"},
	{"composed and decomposed accent", "José", "Jose\u0301"},
	{"accent, other case", "José", "JOSÉ"},
	{"mathematical bold", "bob", "\U0001d41b\U0001d428\U0001d41b"},
	{"small capital", "bob", "b\u1d0fb"},
}

// differentCases are pairs that stay two names.
var differentCases = []struct {
	name string
	a, b string
}{
	{"longer", "bob", "bobby"},
	{"digit added", "bob", "bob2"},
	{"other names", "alice", "carol"},
	{"one letter apart", "bob", "rob"},
	{"accent", "jose", "josé"},
	{"capital I is an i, not an l", "Alice", "AIice"},
	{"i and l", "ian", "lan"},
	{"two digits", "pc1", "pc2"},
	{"space", "alice smith", "alicesmith"},
	{"Han", "李雷", "李电"},
	{"emoji", "\U0001F600 fan", "\U0001F601 fan"},
	{"empty and not", "", "a"},
}

func TestSame(t *testing.T) {
	for _, tt := range sameCases {
		t.Run(tt.name, func(t *testing.T) {
			if !Same(tt.a, tt.b) || !Same(tt.b, tt.a) {
				t.Fatalf("Same(%q, %q) = false (keys %q and %q), want true", tt.a, tt.b, Key(tt.a), Key(tt.b))
			}
		})
	}
	for _, tt := range differentCases {
		t.Run(tt.name, func(t *testing.T) {
			if Same(tt.a, tt.b) {
				t.Fatalf("Same(%q, %q) = true (key %q), want two names", tt.a, tt.b, Key(tt.a))
			}
		})
	}
}

// TestKeyOfPlainNames: a lower-case ASCII name that has no look-alike
// characters is its own key, so keys stay readable in logs and files.
func TestKeyOfPlainNames(t *testing.T) {
	for _, n := range []string{"bob", "bobby", "bob2", "alice", "carol", "receiver-2", "web-3f2a"} {
		if k := Key(n); k != n {
			t.Errorf("Key(%q) = %q, want the name itself", n, k)
		}
	}
}

// TestKeyIsAFixedPoint: for every printable character, Key reaches a form
// that one more round leaves unchanged, so Key(Key(x)) == Key(x).
func TestKeyIsAFixedPoint(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !unicode.IsPrint(r) {
			continue
		}
		s := string(r)
		if k := Key(s); round(k) != k {
			t.Errorf("Key(%q) = %q, but another round gives %q", s, k, round(k))
		}
	}
}

func FuzzKey(f *testing.F) {
	for _, tt := range sameCases {
		f.Add(tt.a, tt.b)
	}
	for _, tt := range differentCases {
		f.Add(tt.a, tt.b)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		ka := Key(a)
		if Key(ka) != ka {
			t.Fatalf("Key(%q) = %q, Key of that = %q: not a fixed point", a, ka, Key(ka))
		}
		if Same(a, b) != Same(b, a) {
			t.Fatalf("Same(%q, %q) is not symmetric", a, b)
		}
		if !Same(a, a+"") || Same(a, b) != (ka == Key(b)) {
			t.Fatalf("Same(%q, %q) disagrees with the keys", a, b)
		}
	})
}
