#!/usr/bin/env bash
# kill -9 of a simulate worker holding a partially finished bundle (simulator.bundle: 8,
# 4 slots): some of the bundle's runs stored, the bundle itself unacked (it is acked only
# once every run of it is stored). The broker redelivers the whole bundle to the next
# worker, which re-runs it; storage is idempotent by sample_id. Five kills, a new worker
# after each; the ledger oracle must find every sample stored exactly once, nothing lost.
# PERSISTENT=1: with persistent simulators.
. "$(dirname "$0")/lib.sh"
use_fixture_broker
C="fault-bundle-$$"
MAX_SIMS=64
KILLS=5
# runs of 30 steps x 0.05 s = 1.5 s on 4 slots: a bundle of 8 takes two waves
BUNDLE=8 osc_config "$C" $MAX_SIMS 0.05 30 4
ledger_tap "$C"
start store "$BIN/specline-store" "$T/config.yaml"
start sim "$BIN/specline-simulate" "$T/config.yaml" --slots 4
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 3
# writes to the store (a re-run rewrites its row: counted too)
writes_now() { sql "select coalesce(sum(writes),0) from \"$C\"" 2>/dev/null || echo 0; }
# partial: this incarnation has written 1..7 points: its first bundle of 8 is not done, so
# unacked (the redelivered copy re-runs the stored ones: "rewritten" below proves it)
partial() {
  local d=$(($(writes_now) - base))
  [ "$d" -ge 1 ] && [ "$d" -le 7 ]
}
held=0
for k in $(seq $KILLS); do
  base=$(writes_now)
  if ! wait_for 30 partial; then
    log "kill $k: no partial bundle seen (written $(($(writes_now) - base)))"
    break
  fi
  log "kill $k: $(($(writes_now) - base)) points of this worker's first bundle written: kill -9"
  kill -9 "${WPID[sim]}"
  wait "${WPID[sim]}" 2>/dev/null
  held=$((held + 1))
  start sim "$BIN/specline-simulate" "$T/config.yaml" --slots 4
done
wait_explore 150
kill "${WPID[sim]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[sim]}" "${WPID[store]}" 2>/dev/null
ledger_report "$C"
check "simulate killed holding a partial bundle $KILLS times ($held)" eq "$held" $KILLS
check "the campaign completed (explore exit 0)" eq "$explore_done" 0
check "exactly the budget stored ($STORED == $MAX_SIMS)" eq "$STORED" $MAX_SIMS
check "every sample issued was stored ($ISSUED issued)" eq "$ISSUED" "$STORED"
rewritten=$(sql "select count(*) from \"$C\" where writes > 1")
check "stored runs of the killed bundles re-ran on redelivery ($rewritten rewritten)" test "$rewritten" -gt 0
check "and were rewritten, not added" eq "$(sql "select count(*) from \"$C\"")" "$(sql "select count(distinct sample_id) from \"$C\"")"
ledger_checks
finish
