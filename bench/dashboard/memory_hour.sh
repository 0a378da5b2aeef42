#!/usr/bin/env bash
# The dashboard's memory over a long campaign with the page open (prints numbers; not a
# test). A local broker; `specline run` of examples/oscillator-experiment slowed down (a
# slow simulator: STEP_DELAY s a step, 400 steps; 2 slots; a light learner) with a wall
# budget longer than the measurement, the experiment's 20 shots submitted; `specline
# dashboard` on a free loopback port refreshing every second; headless Chromium
# (tests/browser/drive.js) drives the page once, then keeps it open for DURATION s, moving
# a slider every 2 s (each move asks a prediction). Every 30 s the dashboard's VmRSS and the
# points stored go into $OUT/rss.csv; at the end: start, end, max, and the least-squares
# slope over the whole run and over its second half (kB per hour).
#
# usage: bench/dashboard/memory_hour.sh      env: DURATION=3600, STEP_DELAY=0.05, OUT=/tmp/dash-hour,
#        BIN=<build>/bin, CHROMIUM=/usr/bin/chromium, KEEP=1 (keeps the broker dir and store)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-3600}
STEP_DELAY=${STEP_DELAY:-0.05}
OUT=${OUT:-/tmp/dash-hour}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -z "${BIN:-}" ]; then
  BIN=$ROOT/build-bench/bin
  [ -x "$BIN/specline" ] || BIN=$ROOT/build/bin
fi
for b in specline specline-simulate specline-store specline-explore specline-learn specline-sim-oscillator; do
  [ -x "$BIN/$b" ] || { echo "memory_hour.sh: $BIN/$b missing; build first (see bench/README.md)" >&2; exit 2; }
done
[ -x "$CHROMIUM" ] && command -v node >/dev/null || { echo "memory_hour.sh: needs $CHROMIUM and node" >&2; exit 2; }
export PATH="$BIN:$PATH"
mkdir -p "$OUT"
T=$(mktemp -d /tmp/specline-dash-hour.XXXXXX)
chmod 755 "$T"
BR="$T/broker"
PIDS=()
cleanup() {
  set +e
  # `specline run` (under timeout, which passes the TERM on) stops its workers itself: wait
  # for it, with the broker still up, before anything is killed
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for _ in $(seq 60); do
    alive=0
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.5
  done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  [ -f "$BR/broker.env" ] && "$BIN/specline" broker stop --dir "$BR" >/dev/null 2>&1
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting a local broker ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
timeout 120 "$BIN/specline" broker start --dir "$BR" >"$OUT/broker.log" 2>&1
# shellcheck disable=SC1091
. "$BR/broker.env"
export SPECLINE_AMQP_URL

C="dash-hour-$$"
EX="$ROOT/examples/oscillator-experiment"
sed -e "s/^experiment: .*/experiment: $C/" -e "s#^store: .*#store: sqlite:$T/store.db#" \
    -e "s/^budget: .*/budget: {max_sims: 100000, wall_s: $((DURATION + 600))}/" \
    -e "s/^simulator: .*/simulator: {command: [\"specline-sim-oscillator\"], max_steps: 400, step_delay: $STEP_DELAY}/" \
    -e "s/^learn: .*/learn: {ensemble: 3, hidden: 32, layers: 2, epochs: 200, batch: 32, lr: 0.003, retrain_every: 8}/" \
    "$EX/config.yaml" >"$OUT/config.yaml"

timeout $((DURATION + 900)) "$BIN/specline" run "$OUT/config.yaml" --no-progress >"$OUT/run.log" 2>&1 &
PIDS+=($!)
"$BIN/specline" dashboard "$OUT/config.yaml" --listen 127.0.0.1:0 --interval 1 --broker-dir "$BR" \
  >"$OUT/dash.log" 2>&1 &
DASH=$!
PIDS+=("$DASH")
P=
for _ in $(seq 150); do
  P=$(sed -n 's#.*http://127.0.0.1:\([0-9]*\)/.*#\1#p' "$OUT/dash.log" | head -1)
  [ -n "$P" ] && break
  sleep 0.2
done
[ -n "$P" ] || { echo "the dashboard did not start:"; cat "$OUT/dash.log"; exit 1; }
echo "== campaign $C, dashboard pid $DASH on http://127.0.0.1:$P/, page open for $DURATION s"
for _ in $(seq 60); do
  "$BIN/specline" shot submit "$OUT/config.yaml" "$EX/shots-train.csv" >>"$OUT/shots.log" 2>&1 && break
  sleep 1
done

# the page's first checks want a surrogate model: open it once the learner has stored one
for _ in $(seq 180); do
  "$BIN/specline" dashboard "$OUT/config.yaml" --once 2>/dev/null | grep -q '"surrogate": *"' && break
  sleep 5
done
HOLD_S=$DURATION CHROMIUM=$CHROMIUM node "$ROOT/tests/browser/drive.js" "http://127.0.0.1:$P/" "$OUT" \
  >"$OUT/drive.log" 2>&1 &
DRIVE=$!
PIDS+=("$DRIVE")

points() { sqlite3 "file:$T/store.db?mode=ro" "select count(*) from \"$C\"" 2>/dev/null || echo ''; }
rss() { awk '/VmRSS/{print $2}' "/proc/$DASH/status" 2>/dev/null; }
echo "s,rss_kb,points" >"$OUT/rss.csv"
t0=$(date +%s)
while :; do
  now=$(($(date +%s) - t0))
  r=$(rss)
  [ -n "$r" ] || { echo "the dashboard died:"; tail -5 "$OUT/dash.log"; exit 1; }
  echo "$now,$r,$(points)" | tee -a "$OUT/rss.csv"
  [ "$now" -ge "$DURATION" ] && break
  kill -0 "$DRIVE" 2>/dev/null || echo "   (the browser driver ended early: see $OUT/drive.log)"
  sleep $((30 - ($(date +%s) - t0) % 30))
done

echo "== the page's checks: $(grep -c '^ok' "$OUT/drive.log") ok, $(grep -c '^FAIL' "$OUT/drive.log") failed ($OUT/drive.log)"
python3 - "$OUT/rss.csv" <<'PY'
import csv, sys
rows = [(float(r["s"]), float(r["rss_kb"]), r["points"]) for r in csv.DictReader(open(sys.argv[1]))]
def slope(rs):
    n = len(rs)
    if n < 2: return float("nan")
    mx = sum(r[0] for r in rs) / n; my = sum(r[1] for r in rs) / n
    sxx = sum((r[0] - mx) ** 2 for r in rs)
    return sum((r[0] - mx) * (r[1] - my) for r in rs) / sxx * 3600 if sxx else float("nan")
half = [r for r in rows if r[0] >= rows[-1][0] / 2]
print(f"samples {len(rows)} over {rows[-1][0]:.0f} s; points stored {rows[0][2]} -> {rows[-1][2]}")
print(f"dashboard VmRSS kB: start {rows[0][1]:.0f}, end {rows[-1][1]:.0f}, max {max(r[1] for r in rows):.0f}, "
      f"min {min(r[1] for r in rows):.0f}")
print(f"slope kB/hour: whole run {slope(rows):.0f}, second half {slope(half):.0f}")
PY
