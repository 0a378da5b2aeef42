#!/usr/bin/env bash
# An event.model published while the broker is away is not lost (issue 13): a small
# campaign is stored, then specline-learn starts (it trains at once on what is stored); as
# soon as it is up the broker is frozen (SIGSTOP of its process group), so the model's
# announcement goes into a socket nobody reads; the broker is then killed -9 and restarted
# on the same data. learn's announcement is published with a confirm, kept until the broker
# confirms it and re-published after the reconnect: a durable queue bound to
# <c>.event.model must hold one announcement per model in the store. learn exits 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"
own_broker --no-management
C="fault-learnc-$$"
osc_config "$C" 40 0 20 2
start store "$BIN/specline-store" "$T/config.yaml"
start sim "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 5
wait_explore 120
kill "${WPID[sim]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[sim]}" "${WPID[store]}" 2>/dev/null
check "the campaign stored its points ($(stored_now))" test "$(stored_now)" -ge 40
"$FBIN/fault_amqp" tap "$C" "$C.fault-models" "$C.event.model" || {
  echo "FAIL cannot bind the model tap"
  exit 1
}

start learn "$BIN/specline-learn" "$T/config.yaml" --min-points 8 --retrain-every 1000
up() { logs learn | grep -q "worker up"; }
wait_for 60 up || echo "  learn never came up"
pg=$(broker_pgid)
kill -STOP -- "-$pg"
EXTRA_CLEANUP="kill -CONT -- -$pg 2>/dev/null"
log "froze the broker ($pg) once learn was up"
trained() { logs learn | grep -q "model '"; }
check "learn trained while the broker was frozen" wait_for 120 trained
sleep 1
log "kill -9 of the frozen broker and a restart"
kill -9 -- "-$pg"
kill -CONT -- "-$pg" 2>/dev/null
group_gone() { ! ps -o pid= -g "$1" >/dev/null 2>&1; }
wait_for 20 group_gone "$pg" || echo "  process group $pg still alive"
"$FBIN/fault_broker" restart "$BROKER_DIR" >"$T/broker-restart.log" 2>&1 || cat "$T/broker-restart.log"
broker_env
EXTRA_CLEANUP=""
reconnected() { logs learn | grep -q "reconnected to"; }
check "learn reconnected" wait_for 60 reconnected
sleep 3
models=$(sql "select count(*) from models where kind = 'surrogate'" 2>/dev/null || echo 0)
"$FBIN/fault_amqp" drain "$C.fault-models" >"$T/models.txt" || echo "  (cannot drain the model tap)"
announced=$(grep -vc '^#' "$T/models.txt")
log "models stored: $models, event.model announcements received: $announced"
check "a model was stored ($models)" test "$models" -ge 1
check "every stored model was announced ($announced >= $models)" test "$announced" -ge "$models"
check "the announcement was re-published, not lost" test "$announced" -ge 1
kill -TERM "${WPID[learn]}"
wait "${WPID[learn]}"
check "learn exits 0 on SIGTERM" eq "$?" 0
finish
