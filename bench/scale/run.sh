#!/usr/bin/env bash
# Scale benchmark (prints numbers; not a test): N store.points (default 200,000) through one
# specline-store on a local broker and a SQLite store, the worker's RSS sampled as they go:
# DESIGN.md §9 asks for flat worker memory over 1M tasks. The points are published by
# bench-scale-store as simulate workers would (persistent, confirmed, quorum store queue).
# usage: bench/scale/run.sh [N]    env: BIN=<build>/bin (default build-bench/bin, else build/bin)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${1:-200000}
if [ -z "${BIN:-}" ]; then
  BIN=$ROOT/build-bench/bin
  [ -x "$BIN/bench-scale-store" ] || BIN=$ROOT/build/bin
fi
for b in specline specline-store bench-scale-store; do
  [ -x "$BIN/$b" ] || { echo "run.sh: $BIN/$b missing; build first" >&2; exit 2; }
done
T=$(mktemp -d /tmp/specline-scale.XXXXXX)
chmod 755 "$T"
SP=
cleanup() {
  [ -n "$SP" ] && kill "$SP" 2>/dev/null && wait "$SP" 2>/dev/null
  [ -f "$T/broker/broker.env" ] && "$BIN/specline" broker stop --dir "$T/broker" >/dev/null 2>&1
  rm -rf "$T"
}
trap cleanup EXIT
echo "== starting a local broker"
timeout 120 "$BIN/specline" broker start --dir "$T/broker" --no-management >"$T/broker.log" 2>&1
# shellcheck disable=SC1091
. "$T/broker/broker.env"
export SPECLINE_AMQP_URL
C="scale-$$"
cat >"$T/config.yaml" <<YAML
experiment: $C
inputs:
  - {name: a, type: float, value_range: [0.0, 1.0]}
  - {name: b, type: float, value_range: [0.0, 1.0]}
outputs:
  - {name: y, type: float}
simulator: {command: ["specline-sim-noop"], max_steps: 1}
budget: {max_sims: $N}
store: sqlite:$T/store.db
YAML
"$BIN/specline" broker init "$T/config.yaml" >/dev/null 2>&1
"$BIN/specline-store" "$T/config.yaml" >"$T/store.log" 2>&1 &
SP=$!
sleep 2
echo "== $N store.points through specline-store (pid $SP), host load $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s.%N)
"$BIN/bench-scale-store" "$C" "$N" "$SP" $((N / 10)) | tee "$T/rss.txt"
# wait until every point is in the store
for _ in $(seq 600); do
  n=$(sqlite3 "$T/store.db" "select count(*) from \"$C\"" 2>/dev/null || echo 0)
  [ "$n" -ge "$N" ] && break
  sleep 0.5
done
t1=$(date +%s.%N)
printf '   stored %s of %s in %.1f s: %.0f points/s end to end\n' "$n" "$N" "$(echo "$t1 - $t0" | bc -l)" \
  "$(echo "$n / ($t1 - $t0)" | bc -l)"
awk 'NR > 2 && $1 !~ /^#/ { if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2; last = $2 }
     NR == 3 { first = $2 }
     END { printf "   store RSS after 10%%: %d kB, at the end: %d kB, range %d-%d kB: %s; <= 8 MB: %s\n", first, last,
           min, max, (last - first <= 1024 ? "flat" : "GROWS"), (max <= 8192 ? "yes" : "no") }' "$T/rss.txt"
