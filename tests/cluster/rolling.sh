#!/usr/bin/env bash
# A rolling restart during a campaign: node 1, 2, 3 in turn stopped gracefully and started
# again, the next only once every quorum queue of the campaign has all its members online
# (the way an operator upgrades a cluster). The workers hold the three URLs and follow. The
# campaign completes with nothing lost and nothing duplicated.
. "$(dirname "$0")/lib.sh"
C="cl-roll-$$"
# 150 sims of ~1 s (20 steps x 0.05 s) on 2 workers x 2 slots: ~40 s of work
osc_config "$C" 150 0.05 20 2 2
init_campaign
ledger_tap "$C"

start store "$BIN/specline-store" "$T/config.yaml"
start sim1 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start sim2 "$BIN/specline-simulate" "$T/config.yaml" --slots 2
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 5
workers_started store sim1 sim2 explore

restarted=0
for i in $(seq "$N_NODES"); do
  wait_for 90 all_online "$C.sim" "$C.store" "$C.dead" || echo "  not every member online before node $i"
  sleep 1
  log "stopping node $i ($(node_name "$i")); stored so far: $(stored_now)"
  "$BIN/specline" broker stop --dir "$CL" --node "$i" --grace 20 >"$T/stop.$i.log" 2>&1 || cat "$T/stop.$i.log"
  "$BIN/specline" broker restart --dir "$CL" --node "$i" >"$T/restart.$i.log" 2>&1 && restarted=$((restarted + 1)) ||
    cat "$T/restart.$i.log"
done
check "every node restarted in turn ($restarted)" eq "$restarted" "$N_NODES"

wait_explore 180
kill "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[sim1]}" "${WPID[sim2]}" "${WPID[store]}" 2>/dev/null
ledger_report "$C"
check "the campaign completed (explore exit 0)" eq "$explore_done" 0
check "the budget stored ($STORED >= 150)" test "$STORED" -ge 150
ledger_checks
for q in sim store dead progress predict fault-ledger; do cctl -q delete_queue "$C.$q" >/dev/null 2>&1; done
finish
