# Helpers for the line tests: the shared test broker, a fresh campaign per test, worker
# processes that are always cleaned up, and checks that print what they compare.
set -euo pipefail
# shellcheck source=../osc_campaign.sh
. "$(dirname "${BASH_SOURCE[0]}")/../osc_campaign.sh"
BIN=${SPECLINE_BIN_DIR:?}
SRC=${SPECLINE_SOURCE_DIR:?}
# shellcheck disable=SC1091
. "${SPECLINE_TEST_BROKER_DIR:?}/broker.env"
export SPECLINE_AMQP_URL
export PATH="$BIN:$PATH"
T=$(mktemp -d /tmp/specline-line.XXXXXX)
PIDS=()
FAILS=0
rc=0
CHECKS=0

cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

# start NAME CMD... : runs a worker in the background, logs to $T/NAME.log
start() {
  local name=$1; shift
  "$@" >"$T/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_${name//-/_}=$!"
}

# start_line CONFIG C SLOTS: store, explore (lease 10 s) and one simulate worker of SLOTS
# slots, id "C-sim", as store/explore/sim
start_line() {
  start store "$BIN/specline-store" "$1"
  start explore "$BIN/specline-explore" "$1" --lease-s 10
  start sim "$BIN/specline-simulate" "$1" --slots "$3" --id "$2-sim"
}

# running CONFIG: true while `sim list` shows a running sample ('SAMPLE_ID WORKER step N' a
# line, in $T/list.txt; the whole answer, with its 'queued: ...' line, in $T/list.all)
running() {
  "$BIN/specline" sim list "$1" --wait 1.5 >"$T/list.all" 2>>"$T/list.log" &&
    grep -v '^queued: ' "$T/list.all" >"$T/list.txt" && [ -s "$T/list.txt" ]
}

check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; FAILS=$((FAILS + 1)); fi
}

eq() { [ "$1" = "$2" ] || { echo "  expected '$2', got '$1'"; return 1; }; }

# wait_for SECONDS COMMAND...: polls until COMMAND succeeds
wait_for() {
  local limit=$1; shift
  local end=$((SECONDS + limit))
  while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.2; done
  return 1
}

ctl() { "$BIN/specline" broker ctl --dir "$SPECLINE_TEST_BROKER_DIR" "$@"; }
# queue_depth QUEUE: messages in it (ready + unacked)
queue_depth() { ctl -q list_queues name messages | awk -v q="$1" '$1==q{print $2}'; }

sql() { sqlite3 "$T/store.db" "$@"; }

finish() {
  if [ $FAILS -gt 0 ]; then
    echo "--- logs"; for f in "$T"/*.log; do echo "== $f"; tail -20 "$f"; done
  fi
  echo "$((CHECKS - FAILS)) passed, $FAILS failed"
  [ $FAILS -eq 0 ]
}
