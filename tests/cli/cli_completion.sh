#!/usr/bin/env bash
# Bash completion and --help: `cmake --install` puts the completion script where
# bash-completion finds it; it completes commands, subcommands and each command's options
# (read from its --help); every command and subcommand answers --help on stdout with 0.
set -uo pipefail
BIN=${SPECLINE_BIN_DIR:?}
BUILD=${SPECLINE_BUILD_DIR:?}
T=$(mktemp -d /tmp/specline-compl-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

cmake --install "$BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1 || { cat "$T/install.log"; bad "cmake --install"; }
SCRIPT=$T/prefix/share/bash-completion/completions/specline
[ -f "$SCRIPT" ] && ok "cmake --install puts the completion in share/bash-completion/completions/specline" ||
  bad "no $SCRIPT"
[ -x "$T/prefix/bin/specline" ] && ok "specline installed beside it" || bad "no $T/prefix/bin/specline"

# complete WORDS...: what the completion offers for the last word (prints them, one a line)
complete_words() {
  bash -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
    _specline
    printf "%s\n" "${COMPREPLY[@]}"' _ "$SCRIPT" "$@"
}
expect() { # name, completion output, wanted word
  if grep -qx -- "$3" <<<"$2"; then ok "$1"; else bad "$1: want '$3' in: $(tr '\n' ' ' <<<"$2")"; fi
}
expect "commands" "$(complete_words "$BIN/specline" s)" sim
expect "commands (2)" "$(complete_words "$BIN/specline" s)" shot
expect "broker subcommands" "$(complete_words "$BIN/specline" broker st)" status
expect "sim subcommands" "$(complete_words "$BIN/specline" sim "")" terminate
expect "predict options from its --help" "$(complete_words "$BIN/specline" predict cfg.yaml --off)" --offline
expect "run options" "$(complete_words "$BIN/specline" run cfg.yaml --fr)" --fresh
expect "sim list options" "$(complete_words "$BIN/specline" sim list cfg.yaml --w)" --wait
touch "$T/config.yaml"
expect "a CONFIG file" "$(cd "$T" && complete_words "$BIN/specline" results conf)" config.yaml

for c in run results "sim list" "sim terminate" predict report "shot submit" "shot suggest" top "broker init" \
  "broker status" "broker start" "broker stop" "broker ctl" "config check"; do
  # shellcheck disable=SC2086
  out=$("$BIN/specline" $c --help 2>"$T/err")
  rc=$?
  if [ $rc -eq 0 ] && grep -q "usage: specline ${c%% *}" <<<"$out"; then ok "specline $c --help"; else
    bad "specline $c --help: rc $rc, stdout '$(head -c 200 <<<"$out")', stderr '$(head -c 200 "$T/err")'"
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
