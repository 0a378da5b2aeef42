#!/usr/bin/env bash
# Persistent simulators under faults (simulator.persistent: true, recycled after 4 runs):
#   1. kill -9 of a warm simulator process mid-run, 10 times: its run is a failed point and
#      the worker starts a new process for the slot's next run;
#   2. kill -9 of a simulate worker holding warm processes, 5 times (a new worker after
#      each): the orphaned simulators end (EOF on stdin, SIGPIPE on stdout), their tasks
#      are redelivered;
#   3. terminate of persistent runs (`specline sim terminate`), 3 times: stored terminated
#      with a partial history (the oscillator honours the control line).
# The ledger oracle must find nothing lost and nothing duplicated. FAULT_SEED.
. "$(dirname "$0")/lib.sh"
use_fixture_broker
C="fault-persist-$$"
SEED=${FAULT_SEED:-$$}
RANDOM=$SEED
echo "seed $SEED"
# 120 sims of ~1.5 s (60 steps x 0.025 s) on 2 workers x 2 slots: ~45 s at least
MAX_SIMS=120
PERSISTENT=1 MAX_RUNS=4 osc_config "$C" $MAX_SIMS 0.025 60 2 2
ledger_tap "$C"

start store "$BIN/specline-store" "$T/config.yaml"
start sim1 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start sim2 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 3

# simulator processes (children) of a worker
kids() { pgrep -P "$1" 2>/dev/null || true; }
has_kids() { [ -n "$(kids "${WPID[$1]}")" ]; }
check "warm simulators are running" wait_for 30 has_kids sim1

# 1. kill -9 of a warm simulator mid-run
SIMKILLS=0
for _ in $(seq 10); do
  sleep "0.$((30 + RANDOM % 60))"
  name=sim$((1 + RANDOM % 2))
  mapfile -t ks < <(kids "${WPID[$name]}")
  [ ${#ks[@]} -gt 0 ] || continue
  kill -9 "${ks[RANDOM % ${#ks[@]}]}" 2>/dev/null && SIMKILLS=$((SIMKILLS + 1))
done
log "killed $SIMKILLS warm simulators"
check "the workers survived the simulator kills" alive "${WPID[sim1]}"
check "  (both)" alive "${WPID[sim2]}"
sleep 2 # failed points are decided 1.5 s after an outside kill
FAILED=$(sql "select count(*) from \"$C\" where status='failed' and error like '%signal 9%'" 2>/dev/null || echo 0)
check "killed runs stored as failed points ($FAILED of $SIMKILLS kills)" test "$FAILED" -ge 1
check "new processes serve the slots" wait_for 10 has_kids sim1

# 2. kill -9 of a worker holding warm processes
ORPHANS=()
for _ in $(seq 5); do
  sleep "0.$((30 + RANDOM % 60))"
  name=sim$((1 + RANDOM % 2))
  mapfile -t ks < <(kids "${WPID[$name]}")
  ORPHANS+=("${ks[@]}")
  kill -9 "${WPID[$name]}" 2>/dev/null
  wait "${WPID[$name]}" 2>/dev/null
  start "$name" "$BIN/specline-simulate" "$T/config.yaml" --slots 2
done
log "killed 5 workers, leaving ${#ORPHANS[@]} simulators without a worker"
orphans_gone() {
  local p
  for p in "${ORPHANS[@]:-}"; do [ -n "$p" ] && alive "$p" && return 1; done
  return 0
}
check "the simulators of killed workers end by themselves" wait_for 10 orphans_gone

# 3. terminate of persistent runs
# (sim list ends with a "queued: ..." line: a running sample is any other line)
running() {
  "$BIN/specline" sim list "$T/config.yaml" --wait 1 >"$T/list.txt" 2>>"$T/list.log" &&
    grep -qv '^queued:' "$T/list.txt"
}
# (a sample listed just before its worker was killed may be gone, or end before the terminate
# lands on a loaded machine: up to 12 tries for 3)
sleep 2
TERMS=0
TERM_IDS=()
for _ in $(seq 12); do
  [ $TERMS -lt 3 ] || break
  wait_for 20 running || break
  S=$(grep -v '^queued:' "$T/list.txt" | head -1 | cut -d' ' -f1)
  "$BIN/specline" sim terminate "$T/config.yaml" "$S" --wait 10 >>"$T/terminate.log" 2>&1 &&
    { TERMS=$((TERMS + 1)); TERM_IDS+=("$S"); }
done
check "3 persistent runs terminated" eq "$TERMS" 3
# Each terminated sample is stored terminated with its partial history, unless a copy of
# its task re-issued after the kills (a lapsed lease) ran to the end later: the store keeps
# the last point, so that one reads complete. Never failed, never missing.
N_TERM=0
for S in "${TERM_IDS[@]}"; do
  st=$(sql "select status || ':' || steps from \"$C\" where sample_id='$S'")
  case "$st" in
    terminated:*) n=${st#terminated:}; [ "$n" -gt 0 ] && [ "$n" -lt 60 ] && N_TERM=$((N_TERM + 1)) ;;
    complete:*) echo "  $S: terminated, then a re-issued copy completed ($st)" ;;
    *) echo "  $S: stored as '$st'"; N_TERM=-99 ;;
  esac
done
check "terminated runs stored terminated with a partial history ($N_TERM of $TERMS), none failed or missing" test "$N_TERM" -ge 1

wait_explore 150
kill "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
ledger_report "$C"
echo "processes: $(logs sim1; logs sim2)" | grep -o 'drained:.*' | head -4
check "the campaign completed (explore exit 0)" eq "$explore_done" 0
check "at least the budget stored ($STORED >= $MAX_SIMS)" test "$STORED" -ge $MAX_SIMS
ledger_checks
finish
