package transfer

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode"
)

type manifestCase struct {
	name    string
	entries []Entry
	want    error  // sentinel the error wraps
	text    string // part of the error text
}

func named(p string) []Entry { return []Entry{fileEntry(p, "x")} }

// badManifests is shared by the validation, hostile-sender and fuzz tests.
var badManifests = []manifestCase{
	{"parent escape", named("../x"), ErrUnsafeName, `transfer: refusing "../x": path escapes the target folder`},
	{"ssh keys", named("../../.ssh/authorized_keys"), ErrUnsafeName, "path escapes the target folder"},
	{"escape inside", named("a/../../b"), ErrUnsafeName, "path escapes the target folder"},
	{"dotdot at end", named("a/.."), ErrUnsafeName, "path escapes the target folder"},
	{"absolute", named("/etc/x"), ErrUnsafeName, `refusing "/etc/x": absolute path`},
	{"drive backslash", named(`C:\x`), ErrUnsafeName, "backslash"},
	{"unc", named(`\\srv\share`), ErrUnsafeName, "UNC"},
	{"backslash", named(`a\b`), ErrUnsafeName, "backslash"},
	{"empty", named(""), ErrUnsafeName, "empty name"},
	{"dot", named("."), ErrUnsafeName, `"." is not allowed`},
	{"dot component", named("a/./b"), ErrUnsafeName, `"." is not allowed`},
	{"double slash", named("a//b"), ErrUnsafeName, "empty folder name"},
	{"trailing slash", named("a/"), ErrUnsafeName, "empty folder name"},
	{"terminal escape", named("a\x1b[1Ab"), ErrUnsafeName, `refusing "a\x1b[1Ab": contains control character U+001B`},
	{"newline", named("a\nb"), ErrUnsafeName, "U+000A"},
	{"nul byte", named("a\x00b"), ErrUnsafeName, "U+0000"},
	{"delete", named("a\x7fb"), ErrUnsafeName, "U+007F"},
	{"c1 control", named("a\u0085b"), ErrUnsafeName, "U+0085"},
	{"bidi override", named("evil\u202etxt.exe"), ErrUnsafeName, `"evil\u202etxt.exe": contains invisible formatting character U+202E`},
	{"bidi isolate", named("a\u2066b"), ErrUnsafeName, "U+2066"},
	{"zero width space", named("a\u200bb"), ErrUnsafeName, "U+200B"},
	{"zero width joiner", named("a\u200db"), ErrUnsafeName, "U+200D"},
	{"byte order mark", named("\ufeffa"), ErrUnsafeName, "U+FEFF"},
	{"line separator", named("a\u2028b"), ErrUnsafeName, "U+2028"},
	{"invalid utf8", named("a\xffb"), ErrUnsafeName, "not valid UTF-8"},
	{"long component", named(strings.Repeat("a", MaxComponentLen+1)), ErrUnsafeName, "longer than 240 bytes"},
	{"long path", named(strings.Repeat("abcdefghi/", 410) + "x"), ErrUnsafeName, "longer than 4096 bytes"},

	{"negative size", []Entry{{Path: "a", Kind: KindFile, Size: -1, SHA256: sumOf("")}}, ErrProtocol, `"a" has a negative size`},
	{"short hash", []Entry{{Path: "a", Kind: KindFile, SHA256: "abc"}}, ErrProtocol, "bad SHA-256"},
	{"upper case hash", []Entry{{Path: "a", Kind: KindFile, SHA256: strings.ToUpper(sumOf(""))}}, ErrProtocol, "bad SHA-256"},
	{"non-hex hash", []Entry{{Path: "a", Kind: KindFile, SHA256: strings.Repeat("g", 64)}}, ErrProtocol, "bad SHA-256"},
	{"missing hash", []Entry{{Path: "a", Kind: KindFile}}, ErrProtocol, "bad SHA-256"},
	{"unknown kind", []Entry{{Path: "a", Kind: "symlink"}}, ErrProtocol, `unknown kind "symlink"`},
	{"folder with size", []Entry{{Path: "a", Kind: KindDir, Size: 3}}, ErrProtocol, `folder "a" has a size`},
	{"total size overflow", []Entry{
		{Path: "a", Kind: KindFile, Size: math.MaxInt64, SHA256: sumOf("")},
		{Path: "b", Kind: KindFile, Size: 1, SHA256: sumOf("")},
	}, ErrProtocol, "overflows"},

	{"duplicate", []Entry{fileEntry("a.txt", "1"), fileEntry("a.txt", "2")}, ErrUnsafeName, `refusing "a.txt": listed twice`},
	{"duplicate folder", []Entry{dirEntry("d"), dirEntry("d")}, ErrUnsafeName, "listed twice"},
	{"case collision", []Entry{fileEntry("A.txt", "1"), fileEntry("a.txt", "2")}, ErrUnsafeName, `refusing "a.txt": collides with "A.txt"`},
	{"unicode form collision", []Entry{fileEntry("caf\u00e9", "1"), fileEntry("cafe\u0301", "2")}, ErrUnsafeName, "collides with"},
	{"case fold collision", []Entry{fileEntry("straße", "1"), fileEntry("STRASSE", "2")}, ErrUnsafeName, "collides with"},
	{"folder case collision", []Entry{fileEntry("A/x", "1"), fileEntry("a/y", "2")}, ErrUnsafeName, `folder "a" collides with "A"`},
	{"file as parent", []Entry{fileEntry("a", "1"), fileEntry("a/b", "2")}, ErrUnsafeName, `refusing "a/b": its parent "a" is a file`},
	{"file as grandparent", []Entry{fileEntry("a", "1"), fileEntry("a/b/c", "2")}, ErrUnsafeName, `its parent "a" is a file`},
	{"file declared after its contents", []Entry{fileEntry("a/b", "1"), fileEntry("a", "2")}, ErrUnsafeName, "other entries are inside it"},
	{"folder and file", []Entry{dirEntry("a"), fileEntry("a", "2")}, ErrUnsafeName, "listed twice"},
	{"part file collision", []Entry{fileEntry("x.txt", "1"), fileEntry("x.txt.part", "2")}, ErrUnsafeName, `refusing "x.txt.part": collides with the temporary file`},
	{"part folder collision", []Entry{fileEntry("x", "1"), fileEntry("X.part/y", "2")}, ErrUnsafeName, "temporary file"},
}

var goodManifests = []struct {
	name    string
	entries []Entry
}{
	{"empty", nil},
	{"one file", named("a.txt")},
	{"unicode", []Entry{dirEntry("café"), fileEntry("café/naïve résumé.pdf", "1"), fileEntry("日本語.txt", "2"), fileEntry("📷 2024.jpg", "3")}},
	{"dot files and inner dots", []Entry{fileEntry(".bashrc", "1"), fileEntry("a..b", "2"), fileEntry("...x", "3")}},
	{"almost device names", []Entry{fileEntry("CONSOLE.txt", "1"), fileEntry("COM10", "2"), fileEntry("LPT", "3"), fileEntry("nul1.txt", "4"), fileEntry("xcon", "5")}},
	{"spaces and brackets", []Entry{fileEntry(" leading space", "1"), fileEntry("a (1).txt", "2"), fileEntry("[x] {y} #z%.txt", "3")}},
	{"implicit parents", named("x/y/z.txt")},
	{"folder declared after contents", []Entry{fileEntry("a/b", "1"), dirEntry("a")}},
	{"empty file and folder", []Entry{dirEntry("d"), dirEntry("d/empty"), fileEntry("d/e.txt", "")}},
	{"longest component", named(strings.Repeat("a", MaxComponentLen))},
	{"part suffix alone", named("x.part")},
}

func init() {
	// Names only Windows cannot hold are valid: a receiver there renames them.
	for _, tc := range windowsNames {
		goodManifests = append(goodManifests, struct {
			name    string
			entries []Entry
		}{"windows " + tc.name, named(tc.in)})
	}
}

func TestValidateManifest(t *testing.T) {
	for _, tc := range badManifests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateManifest(&Manifest{Entries: tc.entries})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("got error %q, want it to contain %q", err, tc.text)
			}
			assertPrintable(t, err.Error())
		})
	}
	for _, tc := range goodManifests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateManifest(&Manifest{Entries: tc.entries}); err != nil {
				t.Fatalf("got %v, want nil", err)
			}
		})
	}
}

func TestValidateManifestTooManyEntries(t *testing.T) {
	m := &Manifest{Entries: make([]Entry, MaxEntries+1)}
	err := ValidateManifest(m)
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "limit is 1000000") {
		t.Fatalf("got %v, want ErrProtocol naming the limit", err)
	}
	if err := ValidateManifest(nil); !errors.Is(err, ErrProtocol) {
		t.Fatalf("nil manifest: got %v, want ErrProtocol", err)
	}
}

// assertPrintable fails if s would let a terminal or bidi trick through.
func assertPrintable(t *testing.T, s string) {
	t.Helper()
	for _, r := range s {
		if r == '\t' {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			t.Errorf("text %q contains raw U+%04X", s, r)
		}
	}
}

func TestDecodeManifest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
		text string
	}{
		{"not json", "{{", ErrProtocol, "malformed manifest"},
		{"trailing garbage", `{"version":1,"entries":[]} x`, ErrProtocol, "malformed manifest"},
		{"wrong version", `{"version":2,"entries":[]}`, ErrProtocol, "protocol version 2"},
		{"no version", `{"entries":[]}`, ErrProtocol, "protocol version 0"},
		{"entries not a list", `{"version":1,"entries":{}}`, ErrProtocol, "malformed manifest"},
		{"size as string", `{"version":1,"entries":[{"path":"a","kind":"file","size":"1"}]}`, ErrProtocol, "malformed manifest"},
		{"bad name", `{"version":1,"entries":[{"path":"../a","kind":"dir"}]}`, ErrUnsafeName, "escapes"},
		{"ok", `{"version":1,"entries":[{"path":"a","kind":"dir"}],"future":true}`, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeManifest([]byte(tc.in))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
}

func TestDisplayName(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "photo.jpg", "photo.jpg"},
		{"unicode letters", "café/日本.txt", "café/日本.txt"},
		{"empty", "", `""`},
		{"escape sequence", "a\x1b[1Ab", `"a\x1b[1Ab"`},
		{"newline", "a\nb", `"a\nb"`},
		{"bidi override", "evil\u202etxt.exe", `"evil\u202etxt.exe"`},
		{"zero width", "a\u200bb", `"a\u200bb"`},
		{"invalid utf8", "a\xffb", `"a\xffb"`},
		{"quote", `a"b`, `"a\"b"`},
		{"backslash", `a\b`, `"a\\b"`},
		{"no-break space", "a\u00a0b", `"a\u00a0b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DisplayName(tc.in); got != tc.want {
				t.Errorf("DisplayName(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestEscapeText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "disk full", "disk full"},
		{"escape", "a\x1b[31mred", `a\x1b[31mred`},
		{"bidi", "x\u202ey", `x\u202ey`},
		{"invalid", "a\xffb", `a\xffb`},
		{"long", strings.Repeat("a", 600), strings.Repeat("a", 512) + "..."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := escapeText(tc.in); got != tc.want {
				t.Errorf("escapeText(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestNumbered(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"extension", "a.txt", 1, "a (1).txt"},
		{"in folder", "d/e/photo.jpg", 2, "d/e/photo (2).jpg"},
		{"no extension", "README", 1, "README (1)"},
		{"dot file", ".bashrc", 1, ".bashrc (1)"},
		{"tarball", "src.tar.gz", 3, "src (3).tar.gz"},
		{"inner dots", "a.b.c", 1, "a.b (1).c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := numbered(tc.in, tc.n); got != tc.want {
				t.Errorf("numbered(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func manifestJSON(entries []Entry) []byte {
	b, _ := json.Marshal(wireManifest{Version: ProtocolVersion, Entries: entries})
	return b
}

func FuzzManifest(f *testing.F) {
	for _, tc := range badManifests {
		f.Add(manifestJSON(tc.entries))
	}
	for _, tc := range goodManifests {
		f.Add(manifestJSON(tc.entries))
	}
	f.Add([]byte(`{"version":1,"entries":[{"path":"a","kind":"dir"},{"path":"A/b","kind":"file","size":1,"sha256":"` + sumOf("x") + `"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrUnsafeName) {
				t.Fatalf("error %v wraps neither ErrProtocol nor ErrUnsafeName", err)
			}
			assertPrintable(t, err.Error())
			return
		}
		// Whatever passed must stay valid through a round trip, and every
		// path must be safe on its own.
		for _, e := range m.Entries {
			if err := checkPath(e.Path); err != nil {
				t.Fatalf("accepted %q: %v", e.Path, err)
			}
			if strings.Contains(e.Path, "..") && (e.Path == ".." || strings.HasPrefix(e.Path, "../") || strings.Contains(e.Path, "/../") || strings.HasSuffix(e.Path, "/..")) {
				t.Fatalf("accepted escaping path %q", e.Path)
			}
		}
		// A receiver under the Windows rule gets names Windows holds, as
		// distinct as the manifest's.
		local, err := localNames(m, NamesWindows)
		if err != nil {
			t.Fatalf("Windows names for an accepted manifest: %v", err)
		}
		seen := make(map[string]string, len(local))
		for i := range local {
			k := foldKey(local[i])
			if p, ok := seen[k]; ok {
				t.Fatalf("Windows names: %q and %q both get %q", p, m.Entries[i].Path, local[i])
			}
			seen[k] = m.Entries[i].Path
			for comp := range strings.SplitSeq(local[i], "/") {
				if why := windowsProblem(comp); why != "" {
					t.Fatalf("Windows name %q for %q: %s", local[i], m.Entries[i].Path, why)
				}
				// A '_' after a device name, " (999)" if taken.
				if len(comp) > MaxComponentLen+1+6 {
					t.Fatalf("Windows name %q for %q: a name is %d bytes", local[i], m.Entries[i].Path, len(comp))
				}
			}
		}
		b2, err := encodeManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeManifest(b2); err != nil {
			t.Fatalf("re-decoding an accepted manifest: %v", err)
		}
	})
}
