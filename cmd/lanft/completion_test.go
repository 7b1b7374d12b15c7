package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestCompletionScripts(t *testing.T) {
	tests := []struct {
		shell string
		want  []string // parts of the script
	}{
		{"bash", []string{"_lanft_bash_autocomplete()", "--generate-bash-completion", "complete -o bashdefault -o default -o nospace -F _lanft_bash_autocomplete lanft"}},
		{"zsh", []string{"#compdef lanft", "_lanft()", "--generate-bash-completion", "compdef _lanft lanft"}},
		{"fish", []string{"complete -c lanft", "'doctor'", "'completion'", "__fish_seen_subcommand_from doctor' -f -l interface"}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := newApp(strings.NewReader(""), &stdout, &stderr).Run([]string{"lanft", "completion", tt.shell})
			if err != nil {
				t.Fatalf("lanft completion %s: %v (stderr %q)", tt.shell, err, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("the %s script lacks %q:\n%s", tt.shell, w, stdout.String())
				}
			}
			if strings.Contains(stdout.String(), "$PROG") {
				t.Errorf("the %s script still names $PROG instead of lanft", tt.shell)
			}
		})
	}
}

func TestCompletionBadShell(t *testing.T) {
	for _, args := range [][]string{{"powershell"}, {}, {"bash", "zsh"}} {
		var stdout, stderr bytes.Buffer
		err := newApp(strings.NewReader(""), &stdout, &stderr).Run(append([]string{"lanft", "completion"}, args...))
		if err == nil || !strings.Contains(err.Error(), "bash, zsh or fish") {
			t.Errorf("lanft completion %q: got error %v, want one that names bash, zsh or fish", args, err)
		}
		if stdout.Len() != 0 {
			t.Errorf("lanft completion %q printed %q, want nothing", args, stdout.String())
		}
	}
}

// TestBashCompletionCompletes loads the bash script in a real bash (without
// the bash-completion package) and completes a few command lines with the
// real binary.
func TestBashCompletionCompletes(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	script, err := exec.Command(lanftBin, "completion", "bash").Output()
	if err != nil {
		t.Fatal(err)
	}
	scriptPath := filepath.Join(dir, "lanft.bash")
	if err := os.WriteFile(scriptPath, script, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line string // the words typed so far; the last one is being completed
		want []string
		not  []string
	}{
		{"lanft do", []string{"doctor"}, []string{"share"}},
		{"lanft ", []string{"share", "receive", "peers", "signal", "completion", "doctor"}, nil},
		{"lanft doctor --int", []string{"--interface"}, []string{"--json"}},
		{"lanft completion ", []string{"bash", "zsh", "fish"}, []string{"doctor"}},
		{"lanft completion z", []string{"zsh"}, []string{"bash"}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			words := strings.Split(tt.line, " ")
			var quoted []string
			for _, w := range words {
				quoted = append(quoted, "'"+w+"'")
			}
			prog := "source " + scriptPath + "\n" +
				"COMP_WORDS=(" + strings.Join(quoted, " ") + ")\n" +
				"COMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n" +
				"_lanft_bash_autocomplete\n" +
				`printf '%s\n' "${COMPREPLY[@]}"` + "\n"
			cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(lanftBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			got := strings.Fields(string(out))
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("completing %q: got %q, want %q among them", tt.line, got, w)
				}
			}
			for _, n := range tt.not {
				if slices.Contains(got, n) {
					t.Errorf("completing %q: got %q, want no %q", tt.line, got, n)
				}
			}
		})
	}
}
