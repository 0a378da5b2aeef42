#!/usr/bin/env bash
# A campaign that outlives its simulate pools, on a real single-node Slurm (cluster.sh) and
# the shared test broker: store and explore run here, the simulate workers run as Slurm
# jobs from deploy/slurm/simulate-pool.sbatch. Pool A is drained mid-campaign the way the
# walltime warning does it (SIGURG), pool B is cancelled outright (plain scancel), pool C
# finishes the campaign. Every sample must be stored exactly once and complete.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${SPECLINE_BIN_DIR:?}
SRC=${SPECLINE_SOURCE_DIR:?}
# shellcheck disable=SC1091
. "${SPECLINE_TEST_BROKER_DIR:?}/broker.env"
# shellcheck source=cluster.sh
. "$HERE/cluster.sh"
# shellcheck source=../osc_campaign.sh
. "$HERE/../osc_campaign.sh"
POOL=$SRC/deploy/slurm/simulate-pool.sbatch
MAX_SIMS=24

for p in specline-simulate specline-store specline-explore specline-sim-oscillator; do
  if [ ! -x "$BIN/$p" ]; then echo "SKIP: $BIN/$p is not built"; echo "0 passed, 0 failed"; exit 77; fi
done
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not installed"; echo "0 passed, 0 failed"; exit 77; }

SD=${SPECLINE_TEST_SLURM_DIR:-$(mktemp -d /tmp/specline-slurm.XXXXXX)}
T=$(mktemp -d /tmp/specline-slurm-test.XXXXXX)
chmod 755 "$T"
PIDS=()
FAILS=0
CHECKS=0

cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  slurm_stop "$SD"
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; FAILS=$((FAILS + 1)); fi
}
eq() { [ "$1" = "$2" ] || { echo "  expected '$2', got '$1'"; return 1; }; }
ge() { [ "$1" -ge "$2" ] || { echo "  expected at least $2, got $1"; return 1; }; }
lt() { [ "$1" -lt "$2" ] || { echo "  expected less than $2, got $1"; return 1; }; }
wait_for() { # wait_for SECONDS COMMAND...: polls until COMMAND succeeds
  local end=$((SECONDS + $1))
  shift
  while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.5; done
  return 1
}
finish() {
  if [ $FAILS -gt 0 ]; then
    echo "--- logs"
    for f in "$T"/*.log "$T"/*.out "$SD"/log/*.log; do [ -f "$f" ] && { echo "== $f"; tail -25 "$f"; }; done
  fi
  echo "$((CHECKS - FAILS)) passed, $FAILS failed"
  [ $FAILS -eq 0 ]
}

C="slurm-pool-$$-$RANDOM"
sql() { sqlite3 "$T/store.db" "$@" 2>/dev/null; }
stored() { local n; n=$(sql "select count(*) from \"$C\"") || n=0; echo "${n:-0}"; }
stored_at_least() { [ "$(stored)" -ge "$1" ]; }
job_gone() { ! timeout 10 squeue -h -j "$1" 2>/dev/null | grep -q .; }
job_running() { [ "$(timeout 10 squeue -h -j "$1" -o %T 2>/dev/null)" = RUNNING ]; }
alive() { kill -0 "$1" 2>/dev/null; }
explore_done() { ! alive "$EXPLORE"; }

rc=0
slurm_start "$SD" 6 || rc=$?
if [ $rc -ne 0 ]; then
  echo "cannot start the test Slurm (status $rc)"
  echo "0 passed, 1 failed"
  [ $rc -eq 77 ] && exit 77
  exit 1
fi
# shellcheck disable=SC1091
. "$SD/slurm.env"

# The templates' contract: URL without a password, credentials in a file.
URL=$(printf '%s' "$SPECLINE_AMQP_URL" | sed -E 's#^(amqps?://)[^@/]*@#\1#')
userinfo=$(printf '%s' "$SPECLINE_AMQP_URL" | sed -nE 's#^amqps?://([^@/]*)@.*#\1#p')
printf '%s\n' "${userinfo:-guest:guest}" >"$T/amqp-credentials"
chmod 600 "$T/amqp-credentials"

osc_yaml "$T/config.yaml" experiment="$C" checkpoints=16 max_steps=100 seed=11 max_sims="$MAX_SIMS" \
  command='"specline-sim-oscillator", "--step-delay", "0.015"' wall_s=420 simulate_workers=2 slots=2 \
  store="sqlite:$T/store.db"

export PATH="$BIN:$PATH"
export SPECLINE_AMQP_URL="$URL" SPECLINE_AMQP_CREDENTIALS_FILE="$T/amqp-credentials"
"$BIN/specline-store" "$T/config.yaml" >"$T/store.log" 2>&1 &
PIDS+=($!)
"$BIN/specline-explore" "$T/config.yaml" --slots 4 --lease-s 6 >"$T/explore.log" 2>&1 &
EXPLORE=$!
PIDS+=("$EXPLORE")

# submit NAME: a pool of 2 workers × 2 slots; prints the job id
submit() {
  SPECLINE_BIN_DIR=$BIN SPECLINE_DRAIN_S=5 SPECLINE_SIMULATE_ARGS="--lease-ack-s 2" \
    timeout 30 sbatch --parsable --job-name="pool-$1" --nodes=1 --ntasks-per-node=2 --cpus-per-task=2 \
    --time=10 --output="$T/pool-$1.out" "$POOL" "$T/config.yaml"
}

# --- pool A: drained mid-campaign (SIGURG, as the walltime warning does)
check "node idle before the first pool" slurm_wait_idle "$SD" 60
A=$(submit A)
check "pool A submitted" test -n "$A"
check "pool A runs" wait_for 60 job_running "$A"
check "pool A stores points" wait_for 120 stored_at_least 4
timeout 10 scancel --signal=URG "$A"
check "pool A ends after the drain" wait_for 60 job_gone "$A"
nA=$(stored)
check "campaign not complete when pool A ended" lt "$nA" "$MAX_SIMS"
check "both workers of pool A drained" eq "$(grep -c 'drained:' "$T/pool-A.out" 2>/dev/null)" 2
check "pool A's srun ended cleanly" grep -q 'workers ended (srun status 0)' "$T/pool-A.out"
check "explore waits for the next pool" alive "$EXPLORE"

# --- pool B: cancelled outright
check "node idle before pool B" slurm_wait_idle "$SD" 60
B=$(submit B)
check "pool B runs" wait_for 60 job_running "$B"
check "pool B stores points" wait_for 120 stored_at_least $((nA + 4))
timeout 10 scancel "$B"
check "pool B is gone after scancel" wait_for 60 job_gone "$B"
nB=$(stored)
check "campaign not complete when pool B was cancelled" lt "$nB" "$MAX_SIMS"

# --- pool C: finishes the campaign
check "node idle before pool C" slurm_wait_idle "$SD" 60
Cj=$(submit C)
check "pool C runs" wait_for 60 job_running "$Cj"
check "explore ends the campaign" wait_for 300 explore_done
erc=0
if explore_done; then wait "$EXPLORE" || erc=$?; else erc=timeout; fi
check "explore exits 0" eq "$erc" 0
timeout 10 scancel --signal=URG "$Cj"
check "pool C drains and ends" wait_for 60 job_gone "$Cj"

check "$MAX_SIMS points stored" eq "$(stored)" "$MAX_SIMS"
check "$MAX_SIMS distinct sample ids" eq "$(sql "select count(distinct sample_id) from \"$C\"")" "$MAX_SIMS"
check "all complete" eq "$(sql "select count(*) from \"$C\" where status='complete'")" "$MAX_SIMS"
check "points from at least two pools" ge "$(sql "select count(distinct substr(worker, 1, instr(worker, '.'))) from \"$C\"")" 2

# --- a second campaign entirely in Slurm: services.sbatch ends the pool when it is done
C2="slurm-svc-$$-$RANDOM"
sed -e "s/^experiment: .*/experiment: $C2/" -e "s/max_sims: $MAX_SIMS/max_sims: 6/" \
  -e "s#sqlite:$T/store.db#sqlite:$T/store2.db#" "$T/config.yaml" >"$T/config2.yaml"
check "node idle before the services job" slurm_wait_idle "$SD" 60
S=$(SPECLINE_BIN_DIR=$BIN SPECLINE_STOP_JOBS="pool-S-$$" SPECLINE_PREDICT=0 \
  timeout 30 sbatch --parsable --job-name="svc-$$" --time=10 --output="$T/services.out" \
  "$SRC/deploy/slurm/services.sbatch" "$T/config2.yaml")
P=$(SPECLINE_BIN_DIR=$BIN timeout 30 sbatch --parsable --job-name="pool-S-$$" --nodes=1 --ntasks-per-node=1 \
  --cpus-per-task=2 --time=10 --output="$T/pool-S.out" "$POOL" "$T/config2.yaml")
check "services job ends with the campaign" wait_for 180 job_gone "$S"
check "explore in the services job completed the campaign" grep -q 'explore ended with status 0' "$T/services.out"
check "the services job drained its pool" wait_for 60 job_gone "$P"
check "the pool's worker drained" grep -q 'drained:' "$T/pool-S.out"
check "6 points of the second campaign, complete and distinct" eq \
  "$(sqlite3 "$T/store2.db" "select count(*) || '/' || count(distinct sample_id) || '/' || sum(status='complete') from \"$C2\"" 2>/dev/null)" 6/6/6
finish
