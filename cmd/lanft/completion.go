package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// bashCompletion is urfave/cli's autocomplete/bash_autocomplete for lanft.
// It asks lanft itself for the candidates (--generate-bash-completion).
// Unlike the original it also works without the bash-completion package
// (macOS's bash 3).
const bashCompletion = `# bash completion for lanft. Load it with:
#   source <(lanft completion bash)
_lanft_bash_autocomplete() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur prev opts words cword requestComp
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    if declare -F _init_completion >/dev/null 2>&1; then
      _init_completion -n "=:" || return
    elif declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
      _get_comp_words_by_ref -n "=:" cur prev words cword
    else
      words=("${COMP_WORDS[@]}")
      cword=$COMP_CWORD
    fi
    words=("${words[@]:0:$cword}")
    if [[ "$cur" == "-"* ]]; then
      requestComp="${words[*]} ${cur} --generate-bash-completion"
    else
      requestComp="${words[*]} --generate-bash-completion"
    fi
    opts=$(eval "${requestComp}" 2>/dev/null)
    COMPREPLY=($(compgen -W "${opts}" -- ${cur}))
    return 0
  fi
}

complete -o bashdefault -o default -o nospace -F _lanft_bash_autocomplete lanft
`

// zshCompletion is urfave/cli's autocomplete/zsh_autocomplete for lanft,
// usable both sourced and as the autoloaded _lanft in a $fpath folder.
const zshCompletion = `#compdef lanft
# zsh completion for lanft. Load it with:
#   source <(lanft completion zsh)
# or save it as _lanft in a folder on $fpath.
_lanft() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

if [[ "${funcstack[1]}" == "_lanft" ]]; then
  _lanft "$@"
else
  compdef _lanft lanft
fi
`

var completionShells = []string{"bash", "zsh", "fish"}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: `Prints a script that completes lanft's commands and flags in your shell.
Homebrew installs these for you.

Examples:
   source <(lanft completion bash)                  # add to ~/.bashrc
   lanft completion bash > /etc/bash_completion.d/lanft
   lanft completion zsh > "${fpath[1]}/_lanft"      # then start a new zsh
   lanft completion fish > ~/.config/fish/completions/lanft.fish`,
		BashComplete: func(c *cli.Context) {
			if c.NArg() == 0 {
				for _, s := range completionShells {
					fmt.Fprintln(c.App.Writer, s)
				}
			}
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("completion: name one shell: bash, zsh or fish", 2)
			}
			return writeCompletion(c.App, c.Args().First(), c.App.Writer)
		},
	}
}

// writeCompletion writes app's completion script for shell to w.
func writeCompletion(app *cli.App, shell string, w io.Writer) error {
	var script string
	switch shell {
	case "bash":
		script = bashCompletion
	case "zsh":
		script = zshCompletion
	case "fish":
		s, err := app.ToFishCompletion()
		if err != nil {
			return fmt.Errorf("completion: fish: %w", err)
		}
		script = s
	default:
		return cli.Exit(fmt.Sprintf("completion: unknown shell %q: use bash, zsh or fish", shell), 2)
	}
	_, err := io.WriteString(w, script)
	return err
}
