#!/usr/bin/env bash
# The network between workers and broker fails without the broker dying:
#  1. every worker's connection is closed by the broker (`rabbitmqctl close_connection`);
#  2. the broker freezes (SIGSTOP of its process group for FAULT_FREEZE_S, default 40 s),
#     then resumes (SIGCONT): the TCP connections stay open but nothing answers, so only
#     heartbeats (the workers' default, 10 s) can tell.
# Every worker notices by itself, reconnects, and the campaign completes; nothing hangs,
# nothing is lost or duplicated.
. "$(dirname "$0")/lib.sh"
own_broker --no-management
C="fault-conn-$$"
FREEZE_S=${FAULT_FREEZE_S:-40}
# 80 sims of ~3 s (60 steps x 0.05 s) on 2 x 2 slots: work in flight during both faults
osc_config "$C" 80 0.05 60 2 2
ledger_tap "$C"

start store "$BIN/specline-store" "$T/config.yaml"
start sim1 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start sim2 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 5
WORKERS="store sim1 sim2 explore"
n_log() { logs "$1" | grep -c -- "$2"; }
all_logged() { # all_logged PATTERN N
  local w
  for w in $WORKERS; do [ "$(n_log $w "$1")" -ge "$2" ] || return 1; done
}

check "every worker connected" wait_for 60 all_logged "connected to" 1
sleep 3

# 1. the broker closes every client connection
log "closing every connection (stored so far: $(stored_now))"
n_conns=$(ctl -q list_connections pid 2>/dev/null | grep -c .)
ctl close_all_connections "fault test: connection cut" >"$T/close.out" 2>&1
echo "  $n_conns connections: $(grep -c 'Closing connection' "$T/close.out") closed"
check "the workers' connections closed ($n_conns >= 4)" test "$n_conns" -ge 4
check "every worker reconnected after the cut" wait_for 40 all_logged "reconnected to" 1
for w in $WORKERS; do echo "  $w: $(logs $w | grep 'lost the broker' | head -1 | sed 's/.*lost the broker at [^ ]*: //')"; done
sleep 3

# 2. the broker freezes
pg=$(broker_pgid)
declare -A LOST0
for w in $WORKERS; do LOST0[$w]=$(n_log $w "lost the broker"); done
log "SIGSTOP of the broker's process group $pg for ${FREEZE_S}s (stored so far: $(stored_now))"
t0=$SECONDS
kill -STOP -- "-$pg"
# shellcheck disable=SC2034 # run by cleanup()
EXTRA_CLEANUP="kill -CONT -- -$pg 2>/dev/null"
detected() {
  local w
  for w in $WORKERS; do [ "$(n_log $w "lost the broker")" -gt "${LOST0[$w]}" ] || return 1; done
}
wait_for "$FREEZE_S" detected
detected_all=$?
det=$((SECONDS - t0))
if [ $detected_all -eq 0 ]; then echo "  every worker noticed the frozen broker after ${det}s"; fi
for w in $WORKERS; do
  [ "$(n_log $w "lost the broker")" -gt "${LOST0[$w]}" ] || echo "  $w: nothing noticed during the freeze"
  [ "$(n_log $w "lost the broker")" -gt "${LOST0[$w]}" ] && echo "  $w: $(logs $w | grep 'lost the broker' | tail -1 | sed 's/.*lost the broker at [^ ]*: //')"
done
rest=$((FREEZE_S - (SECONDS - t0)))
[ $rest -gt 0 ] && sleep $rest
kill -CONT -- "-$pg"
log "SIGCONT (stored so far: $(stored_now))"
check "every worker noticed the freeze by itself (heartbeats) within ${FREEZE_S}s" eq "$detected_all" 0
check "every worker reconnected after the freeze" wait_for 60 all_logged "reconnected to" 2

wait_explore 150
survivors=0
for p in ${WPID[store]} ${WPID[sim1]} ${WPID[sim2]}; do alive "$p" && survivors=$((survivors + 1)); done
kill "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
ledger_report "$C"
check "the campaign completed, nothing hung (explore exit 0)" eq "$explore_done" 0
check "the same worker processes throughout" eq "$survivors" 3
check "exactly the budget stored ($STORED == 80)" eq "$STORED" 80
ledger_checks
finish
