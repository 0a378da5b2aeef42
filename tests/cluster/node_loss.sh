#!/usr/bin/env bash
# kill -9 of a node during a campaign, twice: first the node leading <c>.sim, restarted,
# then the node leading <c>.store (after the first came back and its queues have all
# members online again), restarted. The workers hold the three URLs (SPECLINE_AMQP_URL of
# the cluster's broker.env) and are never restarted: they fail over to another node. The
# campaign completes with nothing lost and nothing duplicated; prints the time from each
# leader's death to the next stored result.
. "$(dirname "$0")/lib.sh"
C="cl-loss-$$"
# 100 sims of ~1 s (40 steps x 0.025 s) on 2 workers x 2 slots: ~25 s of work
osc_config "$C" 100 0.025 40 2 2
init_campaign
ledger_tap "$C"

start store "$BIN/specline-store" "$T/config.yaml"
start sim1 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start sim2 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 5
workers_started store sim1 sim2 explore

kills=0
restarts=0
for q in sim store; do
  wait_for 60 all_online "$C.sim" "$C.store" "$C.dead" || echo "  not every member online before the kill"
  wait_for 30 bash -c "[ \"\$(sqlite3 '$T/store.db' 'select count(*) from \"$C\"' 2>/dev/null || echo 0)\" -ge $((kills * 35 + 5)) ]" ||
    echo "  the campaign is slow to move"
  leader=$(leader_of "$C.$q")
  victim=$(node_of "$leader")
  [ -n "$victim" ] || { echo "  no leader found for $C.$q ('$leader')"; continue; }
  n0=$(stored_now)
  pg=$(node_pgid "$victim")
  log "kill -9 of node $victim ($leader, leading $C.$q; process group $pg); stored so far: $n0"
  t0=$(date +%s.%N)
  kill -9 -- "-$pg"
  kills=$((kills + 1))
  if progress_after "$n0" 60; then
    echo "  $C.$q: leader's death to the next stored result: $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5) s"
  else
    echo "  $C.$q: nothing stored in the 60 s after the leader's death"
  fi
  new=$(leader_of "$C.$q")
  echo "  $C.$q: new leader $new"
  "$BIN/specline" broker restart --dir "$CL" --node "$victim" >"$T/restart.$q.log" 2>&1 && restarts=$((restarts + 1)) ||
    cat "$T/restart.$q.log"
done

wait_explore 180
kill "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
ledger_report "$C"
check "two leaders killed ($kills) and their nodes restarted ($restarts)" test "$kills" -eq 2 -a "$restarts" -eq 2
check "the campaign completed (explore exit 0)" eq "$explore_done" 0
check "the budget stored ($STORED >= 100)" test "$STORED" -ge 100
ledger_checks
for q in sim store dead progress predict fault-ledger; do cctl -q delete_queue "$C.$q" >/dev/null 2>&1; done
finish
