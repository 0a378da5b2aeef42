#!/usr/bin/env bash
# The dashboard's memory against the size of the store (prints numbers; not a test): a
# SQLite store grown to each size in SIZES by bench-dash-fill (simulations with inputs and
# final outputs, as the store worker keeps them), and at each size `specline dashboard
# CONFIG --once` (one read of the whole store, the snapshot printed) under /usr/bin/time:
# its peak RSS (the scan's peak included) and the seconds the read took. No broker needed.
# usage: bench/dashboard/rss_store.sh     env: SIZES="1000 10000 50000 100000 200000",
#        BIN=<build>/bin, DASH=<another specline to compare, e.g. an older build>
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIZES=${SIZES:-1000 10000 50000 100000 200000}
if [ -z "${BIN:-}" ]; then
  BIN=$ROOT/build-bench/bin
  [ -x "$BIN/specline" ] || BIN=$ROOT/build/bin
fi
DASH=${DASH:-$BIN/specline}
[ -x "$BIN/bench-dash-fill" ] || { echo "rss_store.sh: $BIN/bench-dash-fill missing; build first" >&2; exit 2; }
T=$(mktemp -d /tmp/specline-dash-rss.XXXXXX)
trap 'rm -rf "$T"' EXIT
sed -e "s/^experiment: .*/experiment: dash-rss/" -e "s#^store: .*#store: sqlite:$T/store.db#" \
  "$ROOT/examples/oscillator-experiment/config.yaml" >"$T/config.yaml"
echo "points stored | dashboard --once peak RSS (kB) | read + snapshot (s)"
have=0
for n in $SIZES; do
  "$BIN/bench-dash-fill" "$T/config.yaml" "sqlite:$T/store.db" "$have" $((n - have))
  have=$n
  env -u SPECLINE_AMQP_URL -u SPECLINE_MGMT_URL /usr/bin/time -f "%M %e" -o "$T/time" \
    "$DASH" dashboard "$T/config.yaml" --once >"$T/snap.json" 2>/dev/null
  [ "$(jq '.counts.complete + .counts.terminated + .counts.failed' "$T/snap.json")" = "$n" ] ||
    { echo "rss_store.sh: the snapshot does not count $n points" >&2; exit 1; }
  read -r rss secs <"$T/time"
  echo "$n | $rss | $secs"
done
