package discovery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ProtocolVersion is the major version of the TXT record this package
// speaks. A peer that announces another major version is ignored; additions
// that old readers can skip are new keys, not a new version.
const ProtocolVersion = 1

// The service every lanft instance advertises, in the "local." domain.
const serviceName = "_lanft._tcp"

// Bounds on what is accepted from the network (and advertised).
const (
	maxIDLen      = 32  // also keeps "lanft-ID-IFINDEX" within a 63-byte DNS label
	maxNameLen    = 64  // bytes of UTF-8
	maxTXTItems   = 32  // strings in one TXT record
	maxTXTItemLen = 255 // one TXT string, the DNS limit
	maxNumLen     = 20  // digits (and sign) of one number
)

// errVersion marks a record of a major version this package does not speak.
var errVersion = errors.New("unsupported protocol version")

// record is what one instance advertises in its TXT record. The wire format
// (strings "key=value", keys case-insensitive, the first occurrence of a key
// wins, unknown keys ignored, as RFC 6763 section 6 says):
//
//	v=1            protocol major version (required; other values: peer ignored)
//	id=ID          instance id: 1-32 of [A-Za-z0-9-], random per process
//	name=NAME      display name: up to 64 bytes of UTF-8, no control or format characters; may be empty
//	prio=N         election priority, a signed 32-bit decimal; higher wins when nobody is host
//	port=N         TCP port of the instance's signaling server, 1-65535
//	host=0|1       1 while the instance claims to be the elected host
//	since=N        when it started claiming, Unix milliseconds (> 0 when host=1, else 0)
//
// Numbers are plain decimal: digits with an optional leading '-' for prio.
type record struct {
	ID        string
	Name      string
	Priority  int
	Port      int
	Host      bool
	HostSince int64
}

// txt encodes r as the strings of a TXT record.
func (r record) txt() []string {
	host := "0"
	if r.Host {
		host = "1"
	}
	return []string{
		"v=" + strconv.Itoa(ProtocolVersion),
		"id=" + r.ID,
		"name=" + r.Name,
		"prio=" + strconv.Itoa(r.Priority),
		"port=" + strconv.Itoa(r.Port),
		"host=" + host,
		"since=" + strconv.FormatInt(r.HostSince, 10),
	}
}

// validate reports what is wrong with r, the same checks parseTXT applies,
// so that an instance never advertises what its peers would refuse.
func (r record) validate() error {
	if err := validID(r.ID); err != nil {
		return err
	}
	if err := validName(r.Name); err != nil {
		return err
	}
	if r.Priority < -1<<31 || r.Priority > 1<<31-1 {
		return fmt.Errorf("priority %d out of 32-bit range", r.Priority)
	}
	if r.Port < 1 || r.Port > 65535 {
		return fmt.Errorf("port %d out of range 1-65535", r.Port)
	}
	if r.Host && r.HostSince <= 0 {
		return errors.New("host claim without a positive since")
	}
	if !r.Host && r.HostSince != 0 {
		return errors.New("since set without a host claim")
	}
	return nil
}

// parseTXT decodes and validates a TXT record heard from the network.
func parseTXT(items []string) (record, error) {
	if len(items) > maxTXTItems {
		return record{}, fmt.Errorf("txt: %d strings, at most %d", len(items), maxTXTItems)
	}
	fields := make(map[string]string, 8)
	for _, it := range items {
		if len(it) > maxTXTItemLen {
			return record{}, fmt.Errorf("txt: string of %d bytes, at most %d", len(it), maxTXTItemLen)
		}
		k, v, ok := strings.Cut(it, "=")
		if k == "" {
			continue // RFC 6763 6.4: a string with no key is ignored
		}
		k = strings.ToLower(k)
		if _, dup := fields[k]; dup {
			continue // RFC 6763 6.4: only the first occurrence counts
		}
		if !ok {
			// A key without '=' is a boolean attribute; none of ours is.
			v = "\x00" // never a valid value: a known key without value fails below
		}
		fields[k] = v
	}
	get := func(k string) (string, error) {
		v, ok := fields[k]
		if !ok {
			return "", fmt.Errorf("txt: missing %q", k)
		}
		return v, nil
	}

	v, err := get("v")
	if err != nil {
		return record{}, err
	}
	major, err := parseDec(v, 0, 1<<31-1)
	if err != nil {
		return record{}, fmt.Errorf("txt: v: %w", err)
	}
	if major != ProtocolVersion {
		return record{}, fmt.Errorf("txt: v=%d: %w", major, errVersion)
	}

	var r record
	if r.ID, err = get("id"); err != nil {
		return record{}, err
	}
	if err := validID(r.ID); err != nil {
		return record{}, fmt.Errorf("txt: %w", err)
	}
	if r.Name, err = get("name"); err != nil {
		return record{}, err
	}
	if err := validName(r.Name); err != nil {
		return record{}, fmt.Errorf("txt: %w", err)
	}
	for _, f := range []struct {
		key      string
		min, max int64
		dst      func(int64)
	}{
		{"prio", -1 << 31, 1<<31 - 1, func(n int64) { r.Priority = int(n) }},
		{"port", 1, 65535, func(n int64) { r.Port = int(n) }},
		{"host", 0, 1, func(n int64) { r.Host = n == 1 }},
		{"since", 0, 1<<63 - 1, func(n int64) { r.HostSince = n }},
	} {
		s, err := get(f.key)
		if err != nil {
			return record{}, err
		}
		n, err := parseDec(s, f.min, f.max)
		if err != nil {
			return record{}, fmt.Errorf("txt: %s: %w", f.key, err)
		}
		f.dst(n)
	}
	if err := r.validate(); err != nil {
		return record{}, fmt.Errorf("txt: %w", err)
	}
	return r, nil
}

// parseDec parses a plain decimal number (digits, optional leading '-')
// within [min, max].
func parseDec(s string, min, max int64) (int64, error) {
	if len(s) == 0 || len(s) > maxNumLen {
		return 0, fmt.Errorf("bad number %q", s)
	}
	digits := strings.TrimPrefix(s, "-")
	if digits == "" {
		return 0, fmt.Errorf("bad number %q", s)
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, fmt.Errorf("bad number %q", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("number %q out of range %d-%d", s, min, max)
	}
	return n, nil
}

// validID checks an instance id: 1-32 of [A-Za-z0-9-]. The id becomes part
// of DNS labels, so nothing else is allowed.
func validID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("id %q: want 1-%d characters", id, maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("id %q: only letters, digits and '-' are allowed", id)
		}
	}
	return nil
}

// validName checks a display name: valid UTF-8 of at most 64 bytes, with no
// control, format (bidi overrides, zero-width) or line/paragraph separator
// characters, so that printing it can hide nothing.
func validName(name string) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("name of %d bytes, at most %d", len(name), maxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("name %q is not valid UTF-8", name)
	}
	for _, c := range name {
		if unicode.In(c, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return fmt.Errorf("name %q contains the character %U", name, c)
		}
	}
	return nil
}
