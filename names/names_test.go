package names

import (
	"strings"
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
	{"Greek capital Upsilon", "bobby", "BOBB\u03a5"},
	{"Greek capital Nu", "nina", "\u039dINA"},
	{"Greek capitals Nu and Iota", "nina", "\u039d\u0399\u039d\u0391"},
	{"Cyrillic capitals", "bob", "\u0412\u041e\u0412"},
	{"Cyrillic capitals, title case", "Bob", "\u0412ob"},
	{"capital I for l", "Alice", "AIice"},
	{"capital I for l, other case", "alice", "AIice"},
	{"capitals I for l", "Bill", "BiII"},
	{"capital I, small l", "Ian", "lan"},
	{"capital I, capital I", "IAN", "ian"},
	{"Al and AI", "Al", "AI"},
	{"Greek case", "\u03b2ob", "\u0392OB"},
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
	{"i and l", "ian", "lan"},
	{"capital I and capital L", "Ian", "Lan"},
	{"capitals I and L", "IAN", "LAN"},
	{"capital L and capital I", "Lia", "Ila"},
	{"capital L, capital I", "Lona", "Iona"},
	{"all capitals and small l", "AL", "AI"},
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
				t.Fatalf("Same(%q, %q) = false (keys %q and %q), want true", tt.a, tt.b, KeysOf(tt.a), KeysOf(tt.b))
			}
		})
	}
	for _, tt := range differentCases {
		t.Run(tt.name, func(t *testing.T) {
			if Same(tt.a, tt.b) {
				t.Fatalf("Same(%q, %q) = true (keys %q and %q), want two names", tt.a, tt.b, KeysOf(tt.a), KeysOf(tt.b))
			}
		})
	}
}

// TestSameIsNotTransitive: Ian is one name with ian and with lan, which
// are two; a name is free only if it meets none of the names in use.
func TestSameIsNotTransitive(t *testing.T) {
	if !Same("Ian", "ian") || !Same("Ian", "lan") || Same("ian", "lan") {
		t.Fatalf("Same(Ian, ian)=%v Same(Ian, lan)=%v Same(ian, lan)=%v, want true, true, false",
			Same("Ian", "ian"), Same("Ian", "lan"), Same("ian", "lan"))
	}
}

// TestOrdinaryNamesStayApart: first names, each written in lower case,
// capitalised and in capitals, are one name only with their own spellings,
// but for the one pair in the list that looks alike as written ("Iona" or
// "IONA", with a capital i, and "lona"). Three keys must not make other
// real names collide.
func TestOrdinaryNamesStayApart(t *testing.T) {
	alike := map[[2]string]bool{{"Iona", "lona"}: true, {"IONA", "lona"}: true}
	var spellings []string
	for n := range strings.FieldsSeq(firstNames) {
		spellings = append(spellings, n, strings.ToUpper(n[:1])+n[1:], strings.ToUpper(n))
	}
	for i, a := range spellings {
		for _, b := range spellings[i+1:] {
			if strings.EqualFold(a, b) {
				continue
			}
			if same, want := Same(a, b), alike[[2]string{a, b}] || alike[[2]string{b, a}]; same != want {
				t.Errorf("Same(%q, %q) = %v (keys %q and %q), want %v", a, b, same, KeysOf(a), KeysOf(b), want)
			}
		}
	}
}

// firstNames are lower-case first names for TestOrdinaryNamesStayApart,
// rich in i, l, I-like and rn/m spellings.
const firstNames = `
ada adam aiden aisha al alan albert alex ali alice alicia alma amelia amir amy ana
anna anne arlo ava ben bill billy bob bobby carl carla carol clara cleo dan dana daniel
david eli elia eliza ella ellie elli emil emily emma eric erin eva ian ida igor ila ilan
ilia ilya ines inga iona ira iris isa isla ivan ivy jill jim jimmy julia julie kai karl
kim lana lara lea leila leo lena li lia liam lila lily lin lina lisa liv lola lona
lou luis luke lulu maria mario mark max mia mila milo mira molly nia nick nico nils
nina noah nora ola oli olga oliver otto paul phil rania ria rita rob sam sara silvia
tia tim tina toni ulla vera will willa william yuri zoe
`

// TestPlainNamesAreTheirKeys: a lower-case ASCII name that has no
// look-alike characters is each of its keys, so keys stay readable in logs
// and files.
func TestPlainNamesAreTheirKeys(t *testing.T) {
	for _, n := range []string{"bob", "bobby", "bob2", "alice", "carol", "receiver-2", "web-3f2a"} {
		if k := KeysOf(n); k != (Keys{n, n, n}) {
			t.Errorf("KeysOf(%q) = %q, want the name itself", n, k)
		}
	}
}

// TestKeysAreFixedPoints: for every printable character, each key reaches
// a form that one more round leaves unchanged, so a key of a key is that
// key.
func TestKeysAreFixedPoints(t *testing.T) {
	rounds := []struct {
		name  string
		round func(string) string
	}{{"Key", foldFirst}, {"shape reading I as i", foldFirst}, {"shape reading I as l", foldFirstKeepingL}}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !unicode.IsPrint(r) {
			continue
		}
		s := string(r)
		for i, k := range KeysOf(s) {
			if next := rounds[i].round(k); next != k {
				t.Errorf("%s of %q is %q, but another round gives %q", rounds[i].name, s, k, next)
			}
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
		ka := KeysOf(a)
		if KeysOf(ka[0])[0] != ka[0] {
			t.Fatalf("Key(%q) = %q, Key of that = %q: not a fixed point", a, ka[0], Key(ka[0]))
		}
		if Same(a, b) != Same(b, a) {
			t.Fatalf("Same(%q, %q) is not symmetric", a, b)
		}
		if !Same(a, a+"") || Same(a, b) != (a == b || ka.Meet(KeysOf(b))) {
			t.Fatalf("Same(%q, %q) disagrees with the keys", a, b)
		}
		if Key(a) == Key(b) && !Same(a, b) {
			t.Fatalf("%q and %q have one Key but are two names", a, b)
		}
	})
}
