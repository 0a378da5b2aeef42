#!/usr/bin/env bash
# The broker dies during a campaign: kill -9 of its whole process group (SPECLINE_BROKER_PID
# of broker.env) and a restart on the same node and data, 5 times (FAULT_BROKER_KILLS),
# then one graceful stop and restart. The workers are never restarted: they reconnect by
# themselves, and the campaign completes with nothing lost and nothing duplicated.
. "$(dirname "$0")/lib.sh"
own_broker --no-management
C="fault-brk-$$"
N_KILLS=${FAULT_BROKER_KILLS:-5}
# 80 sims of ~1.5 s (60 steps x 0.025 s) on 2 workers x 2 slots
osc_config "$C" 80 0.025 60 2 2
ledger_tap "$C"

start store "$BIN/specline-store" "$T/config.yaml"
start sim1 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start sim2 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 5
PIDS0="${WPID[store]} ${WPID[sim1]} ${WPID[sim2]} ${WPID[explore]}"

group_gone() { ! ps -o pid= -g "$1" >/dev/null 2>&1; }
# all_reconnected N: every worker has logged N reconnects
all_reconnected() {
  local w
  for w in store sim1 sim2 explore; do
    [ "$(logs $w | grep -c 'reconnected to')" -ge "$1" ] || return 1
  done
}

kills=0
restarts=0
for i in $(seq "$N_KILLS"); do
  # the workers found the broker again before it dies again; then a random moment
  [ "$i" -gt 1 ] && { wait_for 40 all_reconnected $((i - 1)) || echo "  not every worker reconnected"; }
  sleep "$((1 + RANDOM % 2)).$((RANDOM % 10))"
  pg=$(broker_pgid)
  log "kill -9 of the broker's process group $pg (stored so far: $(stored_now))"
  kill -9 -- "-$pg"
  wait_for 20 group_gone "$pg" || echo "  process group $pg still alive"
  kills=$((kills + 1))
  if "$FBIN/fault_broker" restart "$BROKER_DIR" >"$T/broker-restart.$i.log" 2>&1; then
    restarts=$((restarts + 1))
  else
    cat "$T/broker-restart.$i.log"
  fi
  broker_env
done
wait_for 40 all_reconnected "$N_KILLS" || echo "  not every worker reconnected"
sleep 2
log "graceful stop and restart (stored so far: $(stored_now))"
"$BIN/specline" broker stop --dir "$BROKER_DIR" >"$T/broker-stop.log" 2>&1
graceful=$?
sleep 1
"$FBIN/fault_broker" restart "$BROKER_DIR" >"$T/broker-restart.g.log" 2>&1 && restarts=$((restarts + 1))
broker_env

wait_explore 180
survivors=0
for p in ${WPID[store]} ${WPID[sim1]} ${WPID[sim2]}; do alive "$p" && survivors=$((survivors + 1)); done
kill "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null

ledger_report "$C"
for w in store sim1 sim2 explore; do
  echo "  $w reconnects: $(logs $w | grep -c 'reconnected to')"
done
check "broker killed $N_KILLS times ($kills) and restarted ($restarts of $((N_KILLS + 1)))" \
  test "$kills" -eq "$N_KILLS" -a "$restarts" -eq "$((N_KILLS + 1))"
check "graceful stop worked" eq "$graceful" 0
check "the campaign completed (explore exit 0)" eq "$explore_done" 0
check "the same worker processes throughout (started $PIDS0; none restarted)" eq "$survivors" 3
for w in store sim1 sim2 explore; do
  check "$w reconnected after every broker restart" test "$(logs $w | grep -c 'reconnected to')" -ge $((N_KILLS + 1))
done
check "exactly the budget stored ($STORED == 80)" eq "$STORED" 80
ledger_checks
finish
