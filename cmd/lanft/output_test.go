package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rivo/uniseg"
)

// TestTableLinesUpWideNames: a listing lines up by display width, so names
// with wide (CJK) characters or emoji do not push their columns out.
func TestTableLinesUpWideNames(t *testing.T) {
	var b bytes.Buffer
	printTable(&b, [][]string{
		{"NAME", "ROLE", "SHARES"},
		{"alice", "share", "a.txt"},
		{"会议室", "share", "海滩.jpg"},
		{"bob🚀", "receive", ""},
	})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	col := -1
	for _, l := range lines {
		i := strings.Index(l, "share")
		if i < 0 {
			i = strings.Index(l, "ROLE")
		}
		if i < 0 {
			i = strings.Index(l, "receive")
		}
		w := uniseg.StringWidth(l[:i])
		if col >= 0 && w != col {
			t.Fatalf("column 2 starts at width %d, want %d:\n%s", w, col, b.String())
		}
		col = w
	}
	if got := padWidth("海滩", 6); uniseg.StringWidth(got) != 6 {
		t.Fatalf("padWidth(海滩, 6) is %d columns wide", uniseg.StringWidth(got))
	}
}
