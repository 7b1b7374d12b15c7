package signal

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxNameLength bounds a user name, in runes.
const MaxNameLength = 64

// ErrBadName is returned by CheckName for a name the server refuses.
var ErrBadName = errors.New("bad user name")

// CheckName reports why a login name is unacceptable: empty, too long, not
// NFC-normalised, or holding control, format (bidi overrides, zero-width) or
// unprintable characters, or leading/trailing spaces. Such names could hide
// who a user really is when shown to others.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadName)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: not UTF-8", ErrBadName)
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLength {
		return fmt.Errorf("%w: %d characters, limit %d", ErrBadName, n, MaxNameLength)
	}
	if !norm.NFC.IsNormalString(name) {
		return fmt.Errorf("%w: %q is not in Unicode NFC form", ErrBadName, name)
	}
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("%w: %q has leading or trailing space", ErrBadName, name)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || !unicode.IsPrint(r) && r != ' ' {
			return fmt.Errorf("%w: %q holds the invisible or control character %U", ErrBadName, name, r)
		}
	}
	return nil
}
