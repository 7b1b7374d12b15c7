// Package names makes the one decision of when two lanft user names are
// one name. The signaling host admits one user per name, the --to and
// --from options match names, and peers pin one device key per name
// (internal/identity, the page's storage): all of them ask Same, or
// compare Keys, so that a spelling which looks like a name in use cannot
// pass for another user.
//
// Two names are one when they differ only in
//   - compatibility forms (NFKC: fullwidth ａｌｉｃｅ, ligatures ﬁ, Ⅷ),
//   - letter case (Unicode case folding: Bob, BOB, straße and STRASSE), or
//   - characters that look alike (the confusable skeleton of Unicode
//     UTS #39: Cyrillic а for Latin a, dotless ı for i, 0 for o, 1 for l,
//     m for rn), capitals included: Cyrillic ВОВ is BOB, so bob; Greek
//     ΝINA is NINA, so nina; Latin AIice (capital i) is Alice.
//
// No single fold can do all of that, because a capital I is both an i (by
// case) and what a small l looks like. So a name has three Keys, and two
// names are one when they share any of them (the first with the first,
// and so on): its Key (case folded, then mapped to look-alikes: IAN is
// ian), its shape reading I as i (look-alikes first, then folded: ВОВ,
// ΝINA) and its shape reading I as l (AIice). A capital L is kept apart
// from l in that last one, since nothing mistakes it for an I: Ian is one
// name with lan (alike in most sans-serif fonts), but ian and lan, and Ian
// and Lan, are two.
//
// What no key catches: a small l among capitals read as an I ("NlNA"
// beside "nina"; it is refused beside "NINA"), and names mixing scripts
// that look like no name in use.
//
// Sharing a key is not transitive: Ian is one with ian and one with lan,
// which are two names. Whoever asks "is this name free" must compare it
// with every name in use, not with one representative.
package names

import (
	"strings"

	"github.com/mtibben/confusables"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// maxRounds bounds the folding rounds of a key. A skeleton can map to a
// character that folds again (0 to O to o, Ϛ to σ to o); every character
// reaches its fixed point within two rounds (TestKeysAreFixedPoints checks
// the whole of Unicode).
const maxRounds = 4

// Keys are the forms of one name that Same compares, in the order
// KeysOf gives them: Key, shape reading I as i, shape reading I as l.
// Several of them are often equal (a lower-case ASCII name with no
// look-alike letters is all three).
type Keys [3]string

// KeysOf returns the keys of name. A key is for comparing and looking up;
// show people the name as it was spelt.
func KeysOf(name string) Keys {
	return Keys{
		Key(name),
		fixedPoint(shapeIAsI(name), foldFirst),
		fixedPoint(shapeIAsL(name), foldFirstKeepingL),
	}
}

// Meet reports whether k and o share a key, each compared with the same
// key of the other: their names are one name. (The shape reading I as l of
// "Ian" is "lan", the Key of "Lan": those are two names.)
func (k Keys) Meet(o Keys) bool {
	for i := range k {
		if k[i] == o[i] {
			return true
		}
	}
	return false
}

// Same reports whether a and b are one name (they share a key): `--from
// Alice` finds "alice", and "аlice" in Cyrillic, "BOB", "ВОВ" in Cyrillic
// and "AIice" are refused while "alice" or "bob" is online.
func Same(a, b string) bool { return a == b || KeysOf(a).Meet(KeysOf(b)) }

// Key is the first of a name's keys, the one a name is stored under (the
// cluster's claims): NFKC-normalised, case-folded, mapped to its UTS #39
// confusable skeleton and case-folded again, until that changes nothing,
// and given in NFC. Names with one Key are one name, but so are names that
// share another of their Keys.
func Key(name string) string { return fixedPoint(name, foldFirst) }

// fixedPoint applies round to name until it changes nothing.
func fixedPoint(name string, round func(string) string) string {
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

// foldFirst is one round of Key: NFKC, case fold, skeleton (which
// decomposes to NFD around its table, as UTS #39 says), case fold of what
// the table gave, NFC.
func foldFirst(s string) string { return foldRound(s, cases.Fold().String) }

// foldFirstKeepingL is foldFirst with a capital L left as it is.
func foldFirstKeepingL(s string) string { return foldRound(s, foldExceptL) }

func foldRound(s string, fold func(string) string) string {
	s = fold(norm.NFKC.String(s))
	s = fold(confusables.Skeleton(s))
	return norm.NFC.String(s)
}

// shapeIAsI maps what is written to the characters it looks like before
// folding case, so that capitals of other scripts become the Latin
// capitals they look like (Cyrillic В is B, Greek Ν is N), except that a
// capital that looks like a small l (Latin I, Greek Ι, Cyrillic І, with or
// without accents) is lower-cased first: it reads as an i. Key's rounds
// follow it.
func shapeIAsI(s string) string {
	var b strings.Builder
	for _, r := range norm.NFKD.String(s) {
		c := string(r)
		if l := cases.Fold().String(c); l != c && confusables.Skeleton(c) == "l" {
			c = l
		}
		b.WriteString(c)
	}
	return norm.NFC.String(cases.Fold().String(confusables.Skeleton(b.String())))
}

// shapeIAsL maps what is written to the characters it looks like (I, 1 and
// | are l) before folding case, except for the capital L, which looks like
// none of them and stays apart from l. foldFirstKeepingL's rounds follow it.
func shapeIAsL(s string) string {
	return norm.NFC.String(foldExceptL(confusables.Skeleton(norm.NFKC.String(s))))
}

// foldExceptL case-folds s but for its capital Ls.
func foldExceptL(s string) string {
	parts := strings.Split(s, "L")
	for i, p := range parts {
		parts[i] = cases.Fold().String(p)
	}
	return strings.Join(parts, "L")
}
