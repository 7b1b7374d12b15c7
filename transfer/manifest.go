package transfer

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// EntryKind says whether a manifest entry is a file or a folder.
type EntryKind string

// Entry kinds.
const (
	KindFile EntryKind = "file"
	KindDir  EntryKind = "dir"
	// KindStream is a file whose size and SHA-256 are not known when the
	// manifest is sent (standard input): its manifest entry has neither,
	// and a TRAILER frame after its bytes carries both (stream.go).
	KindStream EntryKind = "stream"
)

// isFile reports whether entries of kind k hold bytes.
func (k EntryKind) isFile() bool { return k == KindFile || k == KindStream }

// Entry is one file or folder of a transfer.
type Entry struct {
	// Path is relative and slash-separated, e.g. "photos/2024/a.jpg".
	Path string    `json:"path"`
	Kind EntryKind `json:"kind"`
	// Size in bytes; files only.
	Size int64 `json:"size,omitempty"`
	// SHA256 is the lowercase hex SHA-256 of the content; files only.
	SHA256 string `json:"sha256,omitempty"`
}

// Manifest lists everything a transfer carries, folders before their contents.
type Manifest struct {
	Entries []Entry `json:"entries"`
}

// Files returns the number of file entries.
func (m *Manifest) Files() int {
	n := 0
	for i := range m.Entries {
		if m.Entries[i].Kind.isFile() {
			n++
		}
	}
	return n
}

// TotalSize returns the sum of the file sizes.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for i := range m.Entries {
		if m.Entries[i].Kind == KindFile {
			n += m.Entries[i].Size
		}
	}
	return n
}

func (m *Manifest) clone() *Manifest {
	return &Manifest{Entries: append([]Entry(nil), m.Entries...)}
}

// Limits enforced by ValidateManifest.
const (
	// ProtocolVersion is the version carried in the MANIFEST frame.
	ProtocolVersion = 1
	// MaxEntries bounds the entries of one manifest. In practice the 16 MiB
	// bound on the MANIFEST frame is reached first (about 100,000 entries
	// with typical names and hashes).
	MaxEntries = 1_000_000
	// MaxPathLen bounds a whole path, in bytes.
	MaxPathLen = 4096
	// MaxComponentLen bounds one path component, in bytes: 255 (the usual
	// filesystem limit) minus room for " (999)" and PartSuffix.
	MaxComponentLen = 240
	// PartSuffix is appended to a file's name while it is being received.
	PartSuffix = ".part"
)

type wireManifest struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

func encodeManifest(m *Manifest) ([]byte, error) {
	return json.Marshal(wireManifest{Version: ProtocolVersion, Entries: m.Entries})
}

// decodeManifest parses and validates a MANIFEST frame payload.
func decodeManifest(b []byte) (*Manifest, error) {
	var w wireManifest
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, newErr(ErrProtocol, err, "transfer: malformed manifest")
	}
	if w.Version != ProtocolVersion {
		return nil, protocolErr(fmt.Sprintf("the sender speaks protocol version %d; this lanft speaks %d", w.Version, ProtocolVersion))
	}
	m := &Manifest{Entries: w.Entries}
	if err := ValidateManifest(m); err != nil {
		return nil, err
	}
	return m, nil
}

// foldKey maps a path to the key under which case-insensitive or
// normalising filesystems (NTFS, APFS, HFS+) may store it. The fold is
// stricter than any of them, so two paths with the same key are refused.
func foldKey(p string) string {
	return norm.NFD.String(cases.Fold().String(norm.NFD.String(p)))
}

// ValidateManifest checks every entry of m before anything is written: the
// names (see checkPath; names that only some systems cannot hold pass, see
// NameRule), the kinds, sizes and hashes, duplicates and
// collisions after Unicode normalisation and case folding, and that no file
// is the parent of another entry. Name problems wrap ErrUnsafeName, shape
// problems ErrProtocol.
func ValidateManifest(m *Manifest) error {
	if m == nil {
		return protocolErr("no manifest")
	}
	if len(m.Entries) > MaxEntries {
		return protocolErr(fmt.Sprintf("the manifest lists %d entries; the limit is %d", len(m.Entries), MaxEntries))
	}
	type seen struct {
		path     string
		kind     EntryKind
		implicit bool // only known as the parent of other entries
	}
	keys := make(map[string]seen, len(m.Entries))
	fileKeys := make([]string, 0, len(m.Entries))
	var total int64
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := checkPath(e.Path); err != nil {
			return err
		}
		switch e.Kind {
		case KindFile:
			if e.Size < 0 {
				return protocolErr(fmt.Sprintf("%s has a negative size (%d)", quote(e.Path), e.Size))
			}
			if e.Size > math.MaxInt64-total {
				return protocolErr("the manifest's total size overflows")
			}
			total += e.Size
			if _, err := parseSum(e.SHA256); err != nil {
				return protocolErr(fmt.Sprintf("%s has a bad SHA-256 %s: want 64 lowercase hex digits", quote(e.Path), quote(e.SHA256)))
			}
		case KindDir:
			if e.Size != 0 || e.SHA256 != "" {
				return protocolErr(fmt.Sprintf("folder %s has a size or hash", quote(e.Path)))
			}
		case KindStream:
			if e.Size != 0 || e.SHA256 != "" {
				return protocolErr(fmt.Sprintf("stream %s has a size or hash in the manifest (they come after its bytes)", quote(e.Path)))
			}
		default:
			return protocolErr(fmt.Sprintf("%s has unknown kind %s", quote(e.Path), quote(string(e.Kind))))
		}

		folded := foldKey(e.Path)
		// Walk the parents of e.Path and of its folded key side by side:
		// folding and NFD never add, drop or create '/'.
		o, f := 0, 0
		for {
			oi := strings.IndexByte(e.Path[o:], '/')
			fi := strings.IndexByte(folded[f:], '/')
			if oi < 0 || fi < 0 {
				if oi >= 0 || fi >= 0 {
					return refuse(e.Path, "cannot be normalised safely")
				}
				break
			}
			o, f = o+oi, f+fi
			parent, parentKey := e.Path[:o], folded[:f]
			if s, ok := keys[parentKey]; !ok {
				keys[parentKey] = seen{path: parent, kind: KindDir, implicit: true}
			} else if s.kind.isFile() {
				return refuse(e.Path, fmt.Sprintf("its parent %s is a file", quote(s.path)))
			} else if s.path != parent {
				return refuse(e.Path, fmt.Sprintf("folder %s collides with %s (names that differ only in case or Unicode form are the same on many systems)", quote(parent), quote(s.path)))
			}
			o, f = o+1, f+1
		}
		if s, ok := keys[folded]; ok {
			switch {
			case s.implicit && s.path == e.Path && e.Kind == KindDir:
				// A folder declared after its contents: fine.
			case s.implicit && s.path == e.Path:
				return refuse(e.Path, "it is declared a file but other entries are inside it")
			case s.path == e.Path:
				return refuse(e.Path, "listed twice")
			default:
				return refuse(e.Path, fmt.Sprintf("collides with %s (names that differ only in case or Unicode form are the same on many systems)", quote(s.path)))
			}
		}
		keys[folded] = seen{path: e.Path, kind: e.Kind}
		if e.Kind.isFile() {
			fileKeys = append(fileKeys, folded)
		}
	}
	// A file's temporary NAME.part must not be another entry.
	for _, k := range fileKeys {
		if s, ok := keys[k+PartSuffix]; ok {
			return refuse(s.path, fmt.Sprintf("collides with the temporary file used while receiving %s", quote(keys[k].path)))
		}
	}
	return nil
}

// parseSum decodes a lowercase hex SHA-256.
func parseSum(s string) ([32]byte, error) {
	var sum [32]byte
	if len(s) != 64 || strings.ToLower(s) != s {
		return sum, fmt.Errorf("bad sha256 %q", s)
	}
	_, err := hex.Decode(sum[:], []byte(s))
	return sum, err
}

// checkPath validates one manifest path: relative, slash-separated, and
// made only of names that no system could take for something else (a
// parent, a root, a drive, another separator) and that show what they are
// (no control, bidi, zero-width or line-separator characters). Names that
// only some systems cannot hold (':', '?', "CON", a trailing dot) pass:
// such a receiver renames them (see NameRule).
func checkPath(p string) error {
	switch {
	case p == "":
		return refuse(p, "empty name")
	case len(p) > MaxPathLen:
		return refuse(p, fmt.Sprintf("path is longer than %d bytes", MaxPathLen))
	case !utf8.ValidString(p):
		return refuse(p, "not valid UTF-8")
	case p[0] == '/':
		return refuse(p, "absolute path; only paths inside the target folder are allowed")
	case strings.HasPrefix(p, `\\`):
		return refuse(p, "network (UNC) path; only paths inside the target folder are allowed")
	case strings.ContainsRune(p, '\\'):
		return refuse(p, `contains a backslash; only "/" separates folders`)
	}
	for comp := range strings.SplitSeq(p, "/") {
		switch {
		case comp == "..":
			return refuse(p, "path escapes the target folder")
		case comp == ".":
			return refuse(p, `"." is not allowed in paths`)
		case comp == "":
			return refuse(p, `empty folder name ("//", or "/" at the end)`)
		case len(comp) > MaxComponentLen:
			return refuse(p, fmt.Sprintf("a name is longer than %d bytes", MaxComponentLen))
		}
	}
	for _, r := range p {
		switch {
		case unicode.IsControl(r):
			return refuse(p, fmt.Sprintf("contains control character U+%04X", r))
		case unicode.Is(unicode.Cf, r):
			return refuse(p, fmt.Sprintf("contains invisible formatting character U+%04X (bidi override, zero-width or similar)", r))
		case unicode.In(r, unicode.Zl, unicode.Zp):
			return refuse(p, fmt.Sprintf("contains line separator U+%04X", r))
		}
	}
	return nil
}
