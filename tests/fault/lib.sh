# shellcheck shell=bash disable=SC2034
# Helpers for the fault tests (sourced): a broker (the shared fixture, or one of the test's
# own that it may kill), workers that are always cleaned up (one log per incarnation), the
# ledger oracle, and checks that print what they compare.
#
# The ledger oracle: before the campaign starts, `fault_amqp tap` binds a durable queue of
# the test's own to the routing key "<c>.sim", so it receives a copy of every sim.task
# published (explore's issues and re-issues, tasks a worker handed back). At the end:
#   issued   = distinct sample_ids in that copy
#   stored   = rows of the campaign's sqlite table
#   dead     = sample_ids dead-lettered into <c>.dead
#   lost     = issued - (stored ∪ dead)          must be 0
#   duplicated = rows - distinct sample_ids      must be 0 (writes > 1 = redeliveries the
#                                                upsert absorbed, printed, allowed)
#   phantom  = stored - issued                   must be 0 (nothing stored that was not issued)
set -uo pipefail
# shellcheck source=../osc_campaign.sh
. "$(dirname "${BASH_SOURCE[0]}")/../osc_campaign.sh"
BIN=${SPECLINE_BIN_DIR:?}
SRC=${SPECLINE_SOURCE_DIR:?}
FBIN=${SPECLINE_FAULT_BIN:?}
export PATH="$BIN:$PATH"
T=$(mktemp -d /tmp/specline-fault.XXXXXX)
chmod 755 "$T" # the broker runs as user rabbitmq and must reach $T/broker
FAILS=0
CHECKS=0
OWN_BROKER=""
BROKER_DIR=""
declare -A WPID=()  # worker name -> pid
declare -A WGEN=()  # worker name -> incarnation
ALLPIDS=()

cleanup() {
  local p
  trap - EXIT
  for p in "${ALLPIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${ALLPIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  [ -n "${EXTRA_CLEANUP:-}" ] && eval "$EXTRA_CLEANUP"
  if [ -n "$OWN_BROKER" ] && [ -f "$OWN_BROKER/broker.env" ]; then
    # a stopped (SIGSTOPped) broker cannot stop gracefully: continue it, then kill the group
    # shellcheck disable=SC1091
    (. "$OWN_BROKER/broker.env" && kill -CONT -- "-$SPECLINE_BROKER_PID" 2>/dev/null)
    "$FBIN/fault_broker" kill "$OWN_BROKER" >/dev/null 2>&1
  fi
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%H:%M:%S)] $*"; }

check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then echo "ok   $what"; else
    echo "FAIL $what"
    FAILS=$((FAILS + 1))
  fi
}
eq() { [ "$1" = "$2" ] || {
  echo "  expected '$2', got '$1'"
  return 1
}; }

# wait_for SECONDS COMMAND...: polls every 0.2 s until COMMAND succeeds
wait_for() {
  local limit=$1
  shift
  local end=$((SECONDS + limit))
  while [ $SECONDS -lt $end ]; do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}

# ---- brokers ----

use_fixture_broker() {
  BROKER_DIR=${SPECLINE_TEST_BROKER_DIR:?}
  # shellcheck disable=SC1091
  . "$BROKER_DIR/broker.env"
  export SPECLINE_AMQP_URL
}

# own_broker [fault_broker start options]: a broker only this test uses (it may kill it)
own_broker() {
  OWN_BROKER=$T/broker
  BROKER_DIR=$OWN_BROKER
  if ! "$FBIN/fault_broker" start "$OWN_BROKER" "$@" >"$T/broker-start.log" 2>&1; then
    cat "$T/broker-start.log"
    echo "FAIL cannot start the test's broker"
    exit 1
  fi
  broker_env
}
broker_env() {
  # shellcheck disable=SC1091
  . "$BROKER_DIR/broker.env"
  export SPECLINE_AMQP_URL
}
broker_pgid() { (. "$BROKER_DIR/broker.env" && echo "$SPECLINE_BROKER_PID"); }

ctl() { "$BIN/specline" broker ctl --dir "$BROKER_DIR" "$@"; }
# queue_depth QUEUE: messages in it (ready + unacked)
queue_depth() { ctl -q list_queues name messages 2>/dev/null | awk -v q="$1" '$1==q{print $2}'; }

# ---- workers ----

# start NAME CMD...: runs a worker in the background, log $T/NAME.<incarnation>.log
start() {
  local name=$1
  shift
  local g=$((${WGEN[$name]:-0} + 1))
  WGEN[$name]=$g
  "$@" >"$T/$name.$g.log" 2>&1 &
  WPID[$name]=$!
  ALLPIDS+=($!)
}
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# logs NAME: all logs of a worker's incarnations
logs() { cat "$T/$1".*.log 2>/dev/null; }
count_in_logs() { cat "$T"/*.log 2>/dev/null | grep -c -- "$1"; }

# ---- campaign config ----

# osc_config C MAX_SIMS STEP_DELAY MAX_STEPS SLOTS [WORKERS]: the oscillator campaign
# (PERSISTENT=1: persistent simulators, recycled after MAX_RUNS runs, default 1000;
# BUNDLE=N: simulator.bundle N); max_failed 0: the faults make failed points on purpose
osc_config() {
  osc_yaml "$T/config.yaml" experiment="$1" max_sims="$2" step_delay="$3" max_steps="$4" \
    slots="$5" simulate_workers="${6:-1}" seed=11 wall_s=900 max_failed=0 \
    persistent="${PERSISTENT:+true}" max_runs="${PERSISTENT:+${MAX_RUNS:-1000}}" \
    bundle="${BUNDLE:-}" store="sqlite:$T/store.db"
}

sql() { sqlite3 -cmd ".timeout 5000" "$T/store.db" "$@"; }
stored_now() { sql "select count(*) from \"$C\"" 2>/dev/null || echo 0; }

# wait_explore SECONDS: waits up to SECONDS for the explore worker (WPID[explore]) to end;
# explore_done = its exit status, or "timeout".
explore_done=""
wait_explore() {
  local pid=${WPID[explore]} end=$((SECONDS + $1))
  while alive "$pid" && [ $SECONDS -lt $end ]; do sleep 0.3; done
  if alive "$pid"; then
    explore_done=timeout
  else
    wait "$pid"
    explore_done=$?
  fi
  log "campaign ended: explore status $explore_done"
}

# ---- the ledger oracle ----

LEDGER_Q=""
ledger_tap() { # ledger_tap CAMPAIGN
  LEDGER_Q="$1.fault-ledger"
  "$FBIN/fault_amqp" tap "$1" "$LEDGER_Q" "$1.sim" || {
    echo "FAIL cannot bind the ledger tap"
    exit 1
  }
}

# ledger_report CAMPAIGN: drains the tap and <c>.dead, reads the store, prints the counts
# and sets LOST, DUP, PHANTOM, STORED, ISSUED, DEAD
ledger_report() {
  local c=$1
  "$FBIN/fault_amqp" drain "$LEDGER_Q" >"$T/tap.txt" || echo "  (cannot drain the tap)"
  "$FBIN/fault_amqp" drain "$c.dead" >"$T/dead.txt" || echo "  (cannot drain $c.dead)"
  grep -v '^#' "$T/tap.txt" | cut -f1 | grep -v '^-$' | grep -v '^-mark-' | sort -u >"$T/issued.ids"
  grep -v '^#' "$T/dead.txt" | cut -f1 | grep -v '^-$' | sort -u >"$T/dead.ids"
  sql "select sample_id from \"$c\"" 2>/dev/null | sort -u >"$T/stored.ids"
  local published rows writes rewrites
  published=$(grep -v '^#' "$T/tap.txt" | grep -vc '^-mark-') # (fault_amqp mark: the test's own marks)
  rows=$(sql "select count(*) from \"$c\"" 2>/dev/null || echo 0)
  writes=$(sql "select coalesce(sum(writes),0) from \"$c\"" 2>/dev/null || echo 0)
  rewrites=$(sql "select count(*) from \"$c\" where writes > 1" 2>/dev/null || echo 0)
  ISSUED=$(wc -l <"$T/issued.ids")
  STORED=$(wc -l <"$T/stored.ids")
  DEAD=$(wc -l <"$T/dead.ids")
  sort -u "$T/stored.ids" "$T/dead.ids" >"$T/accounted.ids"
  LOST=$(comm -23 "$T/issued.ids" "$T/accounted.ids" | wc -l)
  PHANTOM=$(comm -13 "$T/issued.ids" "$T/stored.ids" | wc -l)
  DUP=$((rows - STORED))
  local reissues reconnects gaveup
  reissues=$(count_in_logs "re-issuing")
  reconnects=$(count_in_logs "reconnected to")
  gaveup=$(count_in_logs "giving up on")
  # published - issued: sim.tasks published again for a sample (explore's re-issues of
  # lapsed leases, tasks handed back); "re-issuing" log lines also count first issues of
  # plan positions an explore restart could not know were never published
  echo "ledger $c: published=$published issued=$ISSUED republished=$((published - ISSUED))" \
    "stored=$STORED dead_lettered=$DEAD lost=$LOST duplicated=$DUP phantom=$PHANTOM rows=$rows" \
    "writes=$writes rewritten=$rewrites reissue_log_lines=$reissues reconnects=$reconnects gave_up=$gaveup"
  if [ "$LOST" -gt 0 ]; then
    echo "  lost sample ids:"
    comm -23 "$T/issued.ids" "$T/accounted.ids" | head -20 | sed 's/^/    /'
    for id in $(comm -23 "$T/issued.ids" "$T/accounted.ids" | head -3); do
      echo "  log lines naming $id:"
      grep -h -- "$id" "$T"/*.log | head -10 | sed 's/^/    /'
    done
  fi
}

ledger_checks() {
  check "nothing lost (issued - stored - dead = $LOST)" eq "$LOST" 0
  check "nothing duplicated (rows - distinct ids = $DUP)" eq "$DUP" 0
  check "nothing stored that was not issued ($PHANTOM)" eq "$PHANTOM" 0
  check "something was issued ($ISSUED)" test "$ISSUED" -gt 0
}

finish() {
  if [ $FAILS -gt 0 ]; then
    echo "--- logs (tails)"
    for f in "$T"/*.log; do
      echo "== $f"
      tail -15 "$f"
    done
  fi
  echo "$((CHECKS - FAILS)) passed, $FAILS failed"
  [ $FAILS -eq 0 ]
}
