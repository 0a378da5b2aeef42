#!/usr/bin/env bash
# Man pages: the build writes them from --help with help2man (scripts/man.sh) and
# `cmake --install` puts them in share/man/man1. Each page holds its program's --help:
# every option every command prints is in specline.1, every worker option in the worker's
# page. SKIP (77) only when help2man is not installed (the build then has no pages).
set -uo pipefail
BIN=${SPECLINE_BIN_DIR:?}
BUILD=${SPECLINE_BUILD_DIR:?}
if ! command -v help2man >/dev/null 2>&1; then
  echo "SKIP: help2man not installed (apt-get install help2man), so no man pages are built"
  exit 77
fi
T=$(mktemp -d /tmp/specline-man-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
# the page's text with roff's escaped dashes and backslashes read back
plain() { sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/\\(aq/'"'"'/g' "$1"; }
# has_help PAGE PROGRAM...: every --option and the usage line of PROGRAM's --help are in PAGE
has_help() {
  local page=$1 help missing=""; shift
  help=$("$@" --help 2>&1) || { echo "  $* --help failed"; return 1; }
  plain "$page" >"$T/page.txt"
  grep -qF -- "$(head -1 <<<"$help")" "$T/page.txt" || missing="'$(head -1 <<<"$help")'"
  for o in $(grep -oE -- '--[a-z][a-z0-9-]+' <<<"$help" | sort -u); do
    grep -qF -- "$o" "$T/page.txt" || missing="$missing $o"
  done
  [ -z "$missing" ] || { echo "  $page lacks:$missing"; return 1; }
}
MAN=$BUILD/man
for p in specline specline-simulate specline-explore specline-learn specline-predict specline-store; do
  [ -s "$MAN/$p.1" ] && ok "$p.1 written" || bad "$MAN/$p.1 missing"
done
has_help "$MAN/specline.1" "$BIN/specline" && ok "specline.1 holds specline --help" || bad "specline.1"
for c in run results "sim list" "sim terminate" predict report "shot submit" "shot suggest" top "broker init" \
  "broker status" "broker start" "broker stop" "broker ctl" "config check"; do
  # shellcheck disable=SC2086
  has_help "$MAN/specline.1" "$BIN/specline" $c && ok "specline.1 holds specline $c --help" || bad "specline $c"
done
for w in simulate explore learn predict store; do
  has_help "$MAN/specline-$w.1" "$BIN/specline-$w" && ok "specline-$w.1 holds its --help" || bad "specline-$w.1"
done
if command -v man >/dev/null 2>&1; then
  out=$(MANWIDTH=100 man -l "$MAN/specline.1" 2>"$T/man.err")
  grep -q "COMMANDS IN DETAIL" <<<"$out" && [ ! -s "$T/man.err" ] && ok "man -l renders specline.1" ||
    bad "man -l specline.1: $(head -3 "$T/man.err")"
fi
cmake --install "$BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1 || bad "cmake --install: $(tail -3 "$T/install.log")"
for p in specline specline-simulate; do
  [ -s "$T/prefix/share/man/man1/$p.1" ] && ok "cmake --install puts share/man/man1/$p.1" || bad "no installed $p.1"
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
