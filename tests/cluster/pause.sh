#!/usr/bin/env bash
# A node frozen during a campaign: SIGSTOP of the process group of the node leading <c>.sim
# for 25 s (longer than twice the clients' 10 s heartbeat, shorter than Erlang's 60 s
# net_ticktime: the other nodes elect new leaders, the workers connected to it lose their
# connection and fail over), then SIGCONT. The campaign completes with nothing lost and
# nothing duplicated.
. "$(dirname "$0")/lib.sh"
C="cl-pause-$$"
PAUSE_S=${CLUSTER_PAUSE_S:-25}
osc_config "$C" 100 0.025 40 2 2
init_campaign
ledger_tap "$C"

start store "$BIN/specline-store" "$T/config.yaml"
start sim1 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start sim2 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 5
workers_started store sim1 sim2 explore

wait_for 60 bash -c "[ \"\$(sqlite3 '$T/store.db' 'select count(*) from \"$C\"' 2>/dev/null || echo 0)\" -ge 5 ]" ||
  echo "  the campaign is slow to start"
leader=$(leader_of "$C.sim")
victim=$(node_of "$leader")
pg=$(node_pgid "$victim")
n0=$(stored_now)
log "SIGSTOP of node $victim ($leader, leading $C.sim; process group $pg) for $PAUSE_S s; stored so far: $n0"
t0=$(date +%s.%N)
kill -STOP -- "-$pg"
if progress_after "$n0" "$PAUSE_S"; then
  echo "  frozen leader to the next stored result: $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5) s"
  moved=yes
else
  moved=no
fi
sleep "$(echo "$PAUSE_S - ($(date +%s.%N) - $t0)" | bc | sed 's/^-.*/0/')"
kill -CONT -- "-$pg"
log "SIGCONT of node $victim; stored so far: $(stored_now)"
check "the campaign moved while node $victim was frozen" eq "$moved" yes
check "node $victim's queues have all their members again" wait_for 90 all_online "$C.sim" "$C.store" "$C.dead"

wait_explore 180
kill "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
ledger_report "$C"
check "the campaign completed (explore exit 0)" eq "$explore_done" 0
check "the budget stored ($STORED >= 100)" test "$STORED" -ge 100
ledger_checks
for q in sim store dead progress predict fault-ledger; do cctl -q delete_queue "$C.$q" >/dev/null 2>&1; done
finish
