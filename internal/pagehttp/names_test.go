package pagehttp

import (
	"mime"
	"strconv"
	"testing"
	"unicode/utf8"
)

var dispositionNames = []string{
	"a.txt", "Résumé ☀.bin", `quote".txt`, `back\slash`, "per%cent", "tab\there", "new\nline",
	"emoji 😀", "日本語.txt", "", "semi;colon", "=equals", "right\u202eleft.exe",
}

// FuzzContentDisposition: the header is printable ASCII, and a MIME parser
// (Go's, as browsers do) reads the exact name back from filename*.
func FuzzContentDisposition(f *testing.F) {
	for _, n := range dispositionNames {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, name string) {
		cd := contentDisposition(name)
		for i := range len(cd) {
			if cd[i] < 0x20 || cd[i] >= 0x7f {
				t.Fatalf("%q: byte %#x in the header %q", name, cd[i], cd)
			}
		}
		if !utf8.ValidString(name) || name == "" {
			return
		}
		typ, params, err := mime.ParseMediaType(cd)
		if err != nil || typ != "attachment" || params["filename"] != name {
			t.Fatalf("%q: header %q parses as %q %q (%v)", name, cd, typ, params["filename"], err)
		}
	})
}

func TestParseIndex(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"7", 7, true}, {"1234567", 1234567, true},
		{"", 0, false}, {"01", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1e3", 0, false},
		{"12345678", 0, false}, {" 1", 0, false}, {"٣", 0, false},
	} {
		if got, ok := parseIndex(c.in); got != c.want || ok != c.ok {
			t.Errorf("parseIndex(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// FuzzParseIndex: only canonical decimal indexes pass.
func FuzzParseIndex(f *testing.F) {
	for _, s := range []string{"0", "01", "-1", "999", "1234567", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := parseIndex(s); ok && strconv.Itoa(n) != s {
			t.Fatalf("parseIndex(%q) = %d", s, n)
		}
	})
}

func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{"/c/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/f/1", "/c/", "/", "/c/x/y", "//c/a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		token, name, ok := splitPath(p)
		if ok && "/c/"+token+"/"+name != p {
			t.Fatalf("splitPath(%q) = %q, %q", p, token, name)
		}
	})
}
