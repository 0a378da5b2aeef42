#!/usr/bin/env bash
# Cancel latency (prints numbers; not a test): terminate decision -> simulator gone -> slot
# reused, over N cancels (default 50) on a local broker started for the run.
#
# One specline-simulate with one slot runs long oscillator runs (4000 steps x step_delay
# 5 ms = 20 s, never finishing on their own); explore keeps the sim queue filled and store
# stores. bench-cancel publishes control.terminate for the running sample to
# `<c>.control.all` (what `specline sim terminate` does) and times, on this host's clock:
#   terminate -> simulator gone    the terminated point's produced_at (the worker stamps it
#                                  after reaping the simulator and reading its stdout to EOF)
#   terminate -> point routed      a copy of that store.point reaches bench-cancel's queue
#   terminate -> slot reused       the next simulator process starts (bench-simstamp wrapper
#                                  logs its exec time, then execs the oscillator)
#
# PERSISTENT=1: persistent simulators (simulator.persistent): the terminate is the control
# line, which the oscillator honours at its next step, and "slot reused" is the warm
# process reading its next run's input line (the oscillator stamps it itself through
# $SPECLINE_SIM_STAMP_FILE, no wrapper).
#
# BUNDLE=B: simulator.bundle B (tasks arrive in bundles, the terminated run's bundle stays
# unacked while its other runs go on).
#
# usage: bench/latency/cancel.sh [N]      env: BIN=<build>/bin, STEP_DELAY=0.005, PERSISTENT, BUNDLE, KEEP=1
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../../tests/osc_campaign.sh
. "$ROOT/tests/osc_campaign.sh"
N=${1:-${N:-50}}
STEP_DELAY=${STEP_DELAY:-0.005}
if [ -z "${BIN:-}" ]; then
  BIN=$ROOT/build-bench/bin
  [ -x "$BIN/specline" ] || BIN=$ROOT/build/bin
fi
for b in specline specline-simulate specline-store specline-explore specline-sim-oscillator bench-cancel bench-simstamp; do
  [ -x "$BIN/$b" ] || { echo "cancel.sh: $BIN/$b missing; build first (see bench/README.md)" >&2; exit 2; }
done
export PATH="$BIN:$PATH"
T=$(mktemp -d /tmp/specline-cancel.XXXXXX)
chmod 755 "$T"
BR="$T/broker"
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  [ -f "$BR/broker.env" ] && "$BIN/specline" broker stop --dir "$BR" >/dev/null 2>&1
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting a local broker"
timeout 120 "$BIN/specline" broker start --dir "$BR" >"$T/broker.log" 2>&1
# shellcheck disable=SC1091
. "$BR/broker.env"
export SPECLINE_AMQP_URL
echo "   host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

C="bench-cancel-$$"
if [ -n "${PERSISTENT:-}" ]; then
  SIMULATOR_COMMAND='"specline-sim-oscillator"'
  export SPECLINE_SIM_STAMP_FILE="$T/stamps"
  echo "   persistent simulators"
else
  SIMULATOR_COMMAND='"bench-simstamp", "specline-sim-oscillator"'
fi
osc_yaml "$T/config.yaml" experiment="$C" checkpoints=400 command="$SIMULATOR_COMMAND" max_steps=4000 \
  step_delay="$STEP_DELAY" persistent="${PERSISTENT:+true}" bundle="${BUNDLE:-1}" initial_n=$((N + 20)) \
  seed=5 max_sims=$((N + 20)) wall_s=900 slots=1 store="sqlite:$T/store.db"
export BENCH_SIMSTAMP_FILE="$T/stamps"
: >"$BENCH_SIMSTAMP_FILE"
"$BIN/specline" broker init "$T/config.yaml" >/dev/null
"$BIN/specline-store" "$T/config.yaml" >"$T/store.log" 2>&1 &
PIDS+=($!)
# store first: explore opens the same SQLite file, and two processes switching it to WAL at
# the same moment make specline-store exit with "database is locked" (see bench/README.md)
for _ in $(seq 100); do grep -q 'worker up' "$T/store.log" && break; sleep 0.1; done
"$BIN/specline-explore" "$T/config.yaml" >"$T/explore.log" 2>&1 &
PIDS+=($!)
SPECLINE_LOG=${SPECLINE_LOG:-info} "$BIN/specline-simulate" "$T/config.yaml" --slots 1 --drain-s 0 --id "$C-sim" \
  >"$T/simulate.log" 2>&1 &
PIDS+=($!)

echo "== $N cancels, one at a time, each 0.1-0.4 s after the running sample's first progress"
"$BIN/bench-cancel" --campaign "$C" --stamps "$T/stamps" --n "$N" --timeout-s 400 --out "$T/cancels.csv" &
BC=$!
PIDS+=("$BC")
wait "$BC"
echo "   stored as terminated in the store: $(sqlite3 "$T/store.db" "select count(*) from \"$C\" where status='terminated'" 2>/dev/null || echo '?')"
echo "   (per-cancel rows: $T/cancels.csv; KEEP=1 keeps them)"
