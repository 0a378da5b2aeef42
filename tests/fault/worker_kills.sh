#!/usr/bin/env bash
# kill -9 of a simulate worker, of the store worker and of explore at random moments, at
# least 20 times each (shuffled), a new worker started after each kill, during one
# campaign. Explore re-issues lapsed leases (--lease-s 3); the ledger oracle must find
# nothing lost and nothing duplicated. FAULT_KILLS (per role, default 20), FAULT_SEED.
. "$(dirname "$0")/lib.sh"
use_fixture_broker
C="fault-kills-$$"
PER_ROLE=${FAULT_KILLS:-20}
SEED=${FAULT_SEED:-$$}
RANDOM=$SEED
echo "seed $SEED, $PER_ROLE kills per role"
# 150 sims of ~1.5 s (60 steps x 0.025 s) on 2 workers x 2 slots: at least ~56 s, longer
# than the kill phase (60 kills, 0.15 .. 0.6 s apart)
MAX_SIMS=150
osc_config "$C" $MAX_SIMS 0.025 60 2 2
ledger_tap "$C"

start store "$BIN/specline-store" "$T/config.yaml"
start sim1 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start sim2 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 3

# the kill schedule: PER_ROLE of each role, shuffled
roles=()
for _ in $(seq "$PER_ROLE"); do roles+=(sim store explore); done
for ((i = ${#roles[@]} - 1; i > 0; i--)); do
  j=$((RANDOM % (i + 1)))
  tmp=${roles[i]}
  roles[i]=${roles[j]}
  roles[j]=$tmp
done

declare -A KILLS=([sim]=0 [store]=0 [explore]=0)
explore_done=""
deadline=$((SECONDS + 240))
for role in "${roles[@]}"; do
  # a random moment: 0.15 .. 0.6 s apart
  sleep "0.$((15 + RANDOM % 45))"
  name=$role
  [ "$role" = sim ] && name=sim$((1 + RANDOM % 2))
  pid=${WPID[$name]}
  if [ "$name" = explore ] && ! alive "$pid"; then
    wait "$pid"
    explore_done=$?
    echo "explore ended by itself (status $explore_done) before the kills were done"
    break
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "kill phase over its time limit"
    break
  fi
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  KILLS[$role]=$((${KILLS[$role]} + 1))
  case $name in
  store) start store "$BIN/specline-store" "$T/config.yaml" ;;
  sim1 | sim2) start "$name" "$BIN/specline-simulate" "$T/config.yaml" --slots 2 ;;
  explore) start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 3 ;;
  esac
done
log "kills: simulate=${KILLS[sim]} store=${KILLS[store]} explore=${KILLS[explore]}"

if [ -z "$explore_done" ]; then
  wait_explore 150 # let the campaign finish (bounded)
else
  log "campaign ended: explore status $explore_done"
fi
kill "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null

ledger_report "$C"
echo "queues at the end: sim=$(queue_depth "$C.sim") store=$(queue_depth "$C.store")"
check "the campaign completed (explore exit 0)" eq "$explore_done" 0
check "simulate killed >= $PER_ROLE times (${KILLS[sim]})" test "${KILLS[sim]}" -ge "$PER_ROLE"
check "store killed >= $PER_ROLE times (${KILLS[store]})" test "${KILLS[store]}" -ge "$PER_ROLE"
check "explore killed >= $PER_ROLE times (${KILLS[explore]})" test "${KILLS[explore]}" -ge "$PER_ROLE"
check "exactly the budget stored ($STORED == $MAX_SIMS)" eq "$STORED" $MAX_SIMS
ledger_checks
finish
