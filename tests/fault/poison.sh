#!/usr/bin/env bash
# Poison and malformed messages on every queue a worker consumes, during a campaign:
# <c>.sim (simulate), <c>.store (store), <c>.progress and <c>.events.explore (explore), and
# the simulate workers' control queues (through <c>.control.all). For each queue the same
# 11 messages (fault_amqp poison): truncated JSON, wrong version, oversize (> 1 MiB), wrong
# types, NaN, -Infinity, deep nesting (100,000 brackets), empty body, invalid UTF-8, a valid
# message of another campaign, binary garbage. Each must be dead-lettered into <c>.dead
# (x-death names the queue and the reason), every worker keeps running, good messages keep
# flowing (the campaign completes) and the ledger oracle finds nothing lost.
. "$(dirname "$0")/lib.sh"
use_fixture_broker
C="fault-poison-$$"
osc_config "$C" 40 0.02 50 2 1
ledger_tap "$C"
start store "$BIN/specline-store" "$T/config.yaml"
start sim "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 5
stored_ge() { [ "$(stored_now)" -ge "$1" ]; }
check "the campaign is under way" wait_for 60 stored_ge 2

# queue : exchange : routing key : message kind
# (<c>.sim and <c>.events.explore through the default exchange, straight into the queue:
# the ledger tap on "<c>.sim" must see only what explore issued)
TARGETS=(
  "$C.sim::$C.sim:sim.task"
  "$C.store:specline:$C.store:store.point"
  "$C.progress:specline:$C.progress:sim.progress"
  "$C.events.explore::$C.events.explore:event.stored"
  "$C.control:specline:$C.control.all:control.terminate"
)
declare -A SENT
for t in "${TARGETS[@]}"; do
  IFS=: read -r q ex rk kind <<<"$t"
  "$FBIN/fault_amqp" poison "$C" "$kind" "$ex" "$rk" >"$T/poison-$q.out" 2>"$T/poison-$q.err"
  SENT[$q]=$(sed -n 's/^# \([0-9]*\) published.*/\1/p' "$T/poison-$q.out")
  echo "  $q: ${SENT[$q]:-0} poison messages published ($kind)"
  sleep 1
done
sleep 3
for w in store sim explore; do
  check "$w still running after the poison" alive "${WPID[$w]}"
done

wait_explore 150
for w in store sim; do
  check "$w still running at the end" alive "${WPID[$w]}"
done
kill "${WPID[sim]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[sim]}" "${WPID[store]}" 2>/dev/null
ledger_report "$C"
check "the campaign completed (explore exit 0)" eq "$explore_done" 0
check "exactly the budget stored ($STORED == 40)" eq "$STORED" 40
ledger_checks

# dead letters per source queue (x-death queue; the control queues are <c>.control.<worker>)
echo "dead letters by queue (message: reason):"
for t in "${TARGETS[@]}"; do
  IFS=: read -r q _ _ kind <<<"$t"
  if [ "$q" = "$C.control" ]; then
    sel() { awk -F'\t' -v p="$C.control." 'index($3, p) == 1'; }
  else
    sel() { awk -F'\t' -v p="$q" '$3 == p'; }
  fi
  got=$(grep -v '^#' "$T/dead.txt" | sel | cut -f4 | sort -u)
  n=$(echo -n "$got" | grep -c .)
  reasons=$(grep -v '^#' "$T/dead.txt" | sel | cut -f2 | sort | uniq -c | awk '{printf "%s%s x%s", s, $2, $1; s=", "}')
  missing=$(comm -23 <(grep -v '^#' "$T/poison-$q.out" | cut -d' ' -f1 | sort -u) <(echo "$got" | sort -u) | tr '\n' ' ')
  echo "  $q ($kind): $n of ${SENT[$q]:-?} dead-lettered [${reasons:-none}]${missing:+; not dead-lettered: $missing}"
  check "every poison message on $q dead-lettered ($n of ${SENT[$q]:-?})" eq "$n" "${SENT[$q]:-x}"
done
echo "worker logs on bad messages: simulate $(logs sim | grep -c 'dead-lettering\|dropping a bad')," \
  "store $(logs store | grep -c 'dead-lettering')," \
  "explore $(logs explore | grep -c 'dead-lettering\|dropping a bad')"
finish
