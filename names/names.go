// Package names makes the one decision of when two lanft user names are
// one name. The signaling host admits one user per name, the --to and
// --from options match names, and peers pin one device key per name
// (internal/identity, the page's storage): all of them compare Keys, so
// that a spelling which looks like a name in use cannot pass for another
// user.
//
// Two names are one when they differ only in
//   - compatibility forms (NFKC: fullwidth ａｌｉｃｅ, ligatures ﬁ, Ⅷ),
//   - letter case (Unicode case folding: Bob, BOB, straße and STRASSE), or
//   - characters that look alike (the confusable skeleton of Unicode
//     UTS #39: Cyrillic а for Latin a, dotless ı for i, 0 for o, 1 for l,
//     m for rn).
//
// Case is folded before the skeleton, so a capital I is an i; in many
// fonts it looks like a small l, yet "AIice" and "Alice" stay two names
// (folding I to l as well would make every i an l). Such a name is only
// ever a stranger: --from and --to do not match it, and it meets the pins
// as a first contact, with a verification code to compare.
package names

import (
	"github.com/mtibben/confusables"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// maxRounds bounds the folding rounds of Key. A skeleton can map to a
// character that folds again (0 to O to o, Ϛ to σ to o); every character
// reaches its fixed point within two rounds (TestKeyIsAFixedPoint checks
// the whole of Unicode).
const maxRounds = 4

// Key is the form of name that lanft compares: names with one Key are one
// name. It is NFKC-normalised, case-folded, mapped to its UTS #39
// confusable skeleton and case-folded again, until that changes nothing,
// and given in NFC. A Key is for comparing and looking up; show people the
// name as it was spelt.
func Key(name string) string {
	k := name
	for range maxRounds {
		next := round(k)
		if next == k {
			break
		}
		k = next
	}
	return k
}

// round is one fold: NFKC, case fold, skeleton (which decomposes to NFD
// around its table, as UTS #39 says), case fold of what the table gave,
// NFC.
func round(s string) string {
	s = cases.Fold().String(norm.NFKC.String(s))
	s = cases.Fold().String(confusables.Skeleton(s))
	return norm.NFC.String(s)
}

// Same reports whether a and b are one name (Key(a) == Key(b)): `--from
// Alice` finds "alice", and "аlice" in Cyrillic is refused while "alice"
// is online.
func Same(a, b string) bool { return a == b || Key(a) == Key(b) }
