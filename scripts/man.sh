#!/usr/bin/env bash
# Writes the man pages of specline from each program's own --help (Debian's help2man), so
# a page says exactly what --help says: specline.1 (the top-level help, then every command's
# --help in COMMANDS IN DETAIL) and one page per worker and built-in simulator.
# Usage: scripts/man.sh BIN_DIR OUT_DIR VERSION   (run by the build: target `manpages`)
set -euo pipefail
BIN=$1 OUT=$2 VERSION=$3
mkdir -p "$OUT"
H2M=(help2man --no-info --section=1 --version-string="$VERSION" --no-discard-stderr)

# roff-safe verbatim text: backslashes escaped, lines starting with '.' or "'" protected
verbatim() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

inc=$(mktemp)
trap 'rm -f "$inc"' EXIT
{
  echo "[COMMANDS IN DETAIL]"
  echo "Each command's \\fB\\-\\-help\\fR, as it prints it."
  for c in run results "sim list" "sim terminate" predict report "shot submit" "shot suggest" top dashboard \
    "broker init" "broker status" "broker start" "broker stop" "broker ctl" "config check"; do
    # shellcheck disable=SC2086
    text=$("$BIN/specline" $c --help 2>&1) || continue
    echo ".SS \"specline $c\""
    echo ".nf"
    verbatim <<<"$text"
    echo ".fi"
  done
  echo "[SEE ALSO]"
  echo "specline\\-simulate(1), specline\\-explore(1), specline\\-learn(1), specline\\-predict(1),"
  echo "specline\\-store(1); the documents in docs/ of the source (config.md, simulator\\-protocol.md)."
} >"$inc"
"${H2M[@]}" --name="run speculative-sampling campaigns of simulations, a surrogate and experiments" \
  --include="$inc" --output="$OUT/specline.1" "$BIN/specline"

page() { # page PROGRAM DESCRIPTION
  [ -x "$BIN/$1" ] || return 0
  "${H2M[@]}" --name="$2" --output="$OUT/$1.1" "$BIN/$1"
}
page specline-simulate "the simulate worker: runs a campaign's simulator for each task"
page specline-explore "the explore worker: plans a campaign's simulations and stops them early"
page specline-learn "the learn worker: trains a campaign's surrogate model"
page specline-predict "the predict worker: answers predictions of the surrogate model"
page specline-store "the store worker: writes a campaign's points to SQLite or MongoDB"
page specline-sim-oscillator "built-in simulator: a driven, damped harmonic oscillator"
page specline-sim-lorenz96 "built-in simulator: the Lorenz-96 model"
