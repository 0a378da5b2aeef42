# bash completion for specline (installed by `cmake --install` into
# share/bash-completion/completions/specline; or `source cli/specline-completion.bash`).
# Commands and subcommands are listed here; each command's options are read from its own
# `--help`, so they never drift from the program.

_specline_options() { # COMMAND [SUBCOMMAND]: the --options its --help names
  "${1}" "${@:2}" --help 2>&1 | grep -o -- '--[a-z][a-z0-9-]*' | sort -u
}

_specline() {
  local cur prev cmd sub prog=${COMP_WORDS[0]}
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD - 1]}
  cmd=${COMP_WORDS[1]:-}
  sub=${COMP_WORDS[2]:-}
  COMPREPLY=()

  if [ "$COMP_CWORD" -eq 1 ]; then
    mapfile -t COMPREPLY < <(compgen -W "run results sim predict report shot top broker config --help --version" -- "$cur")
    return
  fi
  case "$prev" in
  --dir | --broker-dir)
    mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    return
    ;;
  --store | --model | --shots | --out | -o)
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    return
    ;;
  --format)
    mapfile -t COMPREPLY < <(compgen -W "csv jsonl" -- "$cur")
    return
    ;;
  esac
  if [ "$COMP_CWORD" -eq 2 ]; then
    case "$cmd" in
    sim) mapfile -t COMPREPLY < <(compgen -W "list terminate --help" -- "$cur") && return ;;
    shot) mapfile -t COMPREPLY < <(compgen -W "submit suggest --help" -- "$cur") && return ;;
    broker) mapfile -t COMPREPLY < <(compgen -W "init status start stop ctl --help" -- "$cur") && return ;;
    config) mapfile -t COMPREPLY < <(compgen -W "check --help" -- "$cur") && return ;;
    esac
  fi
  if [[ "$cur" == -* ]]; then
    case "$cmd" in
    sim | shot | broker | config) mapfile -t COMPREPLY < <(compgen -W "$(_specline_options "$prog" "$cmd" "$sub")" -- "$cur") ;;
    *) mapfile -t COMPREPLY < <(compgen -W "$(_specline_options "$prog" "$cmd")" -- "$cur") ;;
    esac
    return
  fi
  # a CONFIG, a shots file, a directory
  mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  return 0
}
complete -o filenames -F _specline specline
