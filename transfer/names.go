package transfer

import (
	"path"
	"runtime"
	"strconv"
	"strings"
)

// NameRule says which names the receiving system can hold. A name that
// ValidateManifest accepts is safe everywhere, but some of them (a ':', a
// '?', "CON.txt", "notes.") are legal on Linux and macOS and not on Windows:
// a receiver under NamesWindows saves such a file under a safe name and
// reports it in Result.Renamed.
type NameRule uint8

// Name rules.
const (
	// NamesNative is the rule of the system lanft runs on: NamesWindows on
	// Windows, NamesAsSent elsewhere.
	NamesNative NameRule = iota
	// NamesAsSent stores every name as it was sent (Linux, macOS, BSD).
	NamesAsSent
	// NamesWindows replaces what Windows cannot hold: each of <>:"|?* becomes
	// '_', trailing dots and spaces become '_', and a device name (CON, NUL,
	// COM1, ...) gets a '_' after its stem ("CON.txt" -> "CON_.txt"). A safe
	// name that another entry of the manifest has, or takes first, gets a
	// number ("a_b (1).txt"). The result depends only on the manifest, so
	// the .part file of a renamed file is found again when a transfer resumes.
	NamesWindows
)

func (r NameRule) String() string {
	switch r {
	case NamesNative:
		return "native"
	case NamesAsSent:
		return "as-sent"
	case NamesWindows:
		return "windows"
	}
	return "NameRule(" + strconv.Itoa(int(r)) + ")"
}

// effective resolves NamesNative for this system.
func (r NameRule) effective() NameRule {
	if r != NamesNative {
		return r
	}
	if runtime.GOOS == "windows" {
		return NamesWindows
	}
	return NamesAsSent
}

// windowsReserved are the characters Windows does not allow in a name
// (besides controls, which ValidateManifest refuses everywhere).
const windowsReserved = `<>:"|?*`

// component returns the name under which the rule stores one path
// component, and whether it differs from comp.
func (r NameRule) component(comp string) (string, bool) {
	if r.effective() != NamesWindows || windowsProblem(comp) == "" {
		return comp, false
	}
	b := []byte(comp)
	for i, c := range b {
		if strings.IndexByte(windowsReserved, c) >= 0 {
			b[i] = '_'
		}
	}
	for i := len(b) - 1; i >= 0 && (b[i] == '.' || b[i] == ' '); i-- {
		b[i] = '_'
	}
	s := string(b)
	if deviceName(s) != "" {
		stem := strings.IndexByte(s, '.')
		if stem < 0 {
			stem = len(s)
		}
		s = s[:stem] + "_" + s[stem:]
	}
	return s, true
}

// windowsProblem says why Windows cannot hold the path component comp, or
// returns "" when it can.
func windowsProblem(comp string) string {
	if i := strings.IndexAny(comp, windowsReserved); i >= 0 {
		return "contains " + quote(comp[i:i+1])
	}
	if strings.HasSuffix(comp, ".") || strings.HasSuffix(comp, " ") {
		return "ends with a dot or space"
	}
	if dev := deviceName(comp); dev != "" {
		return dev + " is a reserved device name"
	}
	return ""
}

// deviceName returns the Windows device a path component opens ("NUL" for
// "nul.txt"), or "".
func deviceName(comp string) string {
	stem, _, _ := strings.Cut(comp, ".")
	stem = strings.ToUpper(strings.TrimRight(stem, " "))
	switch stem {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return stem
	}
	if len(stem) >= 4 && (strings.HasPrefix(stem, "COM") || strings.HasPrefix(stem, "LPT")) {
		switch stem[3:] {
		case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
			return stem
		}
	}
	return ""
}

// localNames maps each entry of a validated manifest to the slash path
// under which the rule stores it, or returns nil when every name is kept.
// A renamed name never takes the name of a sibling in the manifest (or of
// its .part), nor one an earlier renamed sibling took. Renamed folders keep
// their contents together, so local paths are as distinct as the
// manifest's.
func localNames(m *Manifest, rule NameRule) ([]string, error) {
	if rule.effective() == NamesAsSent {
		return nil, nil
	}
	l := localizer{rule: rule, dirs: make(map[string]string)}
	var local []string
	for i := range m.Entries {
		e := &m.Entries[i]
		var lp string
		if e.Kind == KindDir {
			ld, err := l.dir(m, e.Path) // maybe named already by its contents
			if err != nil {
				return nil, err
			}
			lp = ld
		} else {
			dir, base := splitPath(e.Path)
			ldir, err := l.dir(m, dir)
			if err != nil {
				return nil, err
			}
			name, err := l.name(m, dir, base, e.Path)
			if err != nil {
				return nil, err
			}
			lp = joinPath(ldir, name)
		}
		if lp == e.Path {
			continue
		}
		if local == nil {
			local = make([]string, len(m.Entries))
			for j := range i {
				local[j] = m.Entries[j].Path
			}
		}
		local[i] = lp
	}
	for i := range local {
		if local[i] == "" {
			local[i] = m.Entries[i].Path
		}
	}
	return local, nil
}

type localizer struct {
	rule  NameRule
	dirs  map[string]string // manifest folder -> local folder
	taken map[string]bool   // siblingKey of every name in use
}

// dir returns the local path of manifest folder dir ("" for the target
// folder), renaming it and its parents as the rule asks, once.
func (l *localizer) dir(m *Manifest, dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	if ld, ok := l.dirs[dir]; ok {
		return ld, nil
	}
	parent, base := splitPath(dir)
	lparent, err := l.dir(m, parent)
	if err != nil {
		return "", err
	}
	name, err := l.name(m, parent, base, dir)
	if err != nil {
		return "", err
	}
	ld := joinPath(lparent, name)
	l.dirs[dir] = ld
	return ld, nil
}

// name returns the local name of base, a name in manifest folder dir:
// base itself if the rule keeps it, else the first of its safe name and
// "SAFE (n).ext" that no sibling has or took.
func (l *localizer) name(m *Manifest, dir, base, orig string) (string, error) {
	safe, changed := l.rule.component(base)
	if !changed {
		return base, nil
	}
	if l.taken == nil {
		l.taken = make(map[string]bool, 2*len(m.Entries))
		for i := range m.Entries {
			for p := m.Entries[i].Path; p != ""; {
				d, b := splitPath(p)
				k := siblingKey(d, b)
				if l.taken[k] {
					break // p's parents are in already
				}
				l.taken[k], l.taken[k+PartSuffix] = true, true
				p = d
			}
		}
	}
	for n := 0; n <= maxRenames; n++ {
		c := safe
		if n > 0 {
			c = numbered(safe, n)
		}
		if k := siblingKey(dir, c); !l.taken[k] && !l.taken[k+PartSuffix] {
			l.taken[k], l.taken[k+PartSuffix] = true, true
			return c, nil
		}
	}
	return "", refuse(orig, "no free name for it on this system")
}

// siblingKey identifies name in manifest folder dir the way a case-folding,
// normalising filesystem would.
func siblingKey(dir, name string) string { return dir + "/" + foldKey(name) }

// splitPath splits a slash path into its folder ("" at the top) and name.
func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// maxRenames bounds the "NAME (n).ext" candidates tried per file.
const maxRenames = 999

// numbered returns "dir/stem (n).ext" for "dir/stem.ext"; ".tar.gz" style
// double extensions stay together.
func numbered(p string, n int) string {
	dir, base := path.Split(p)
	ext := path.Ext(base)
	if ext == base { // ".bashrc"
		ext = ""
	}
	stem := base[:len(base)-len(ext)]
	if s := len(stem) - len(".tar"); s > 0 && strings.EqualFold(stem[s:], ".tar") {
		stem, ext = stem[:s], stem[s:]+ext
	}
	return dir + stem + " (" + strconv.Itoa(n) + ")" + ext
}
