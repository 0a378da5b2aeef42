#!/usr/bin/env bash
# Slurm's end of job: SIGTERM to a simulate worker mid-task, SIGKILL after the grace.
#  1. drain long enough (--drain-s 30): the running simulations finish and are stored;
#  2. drain shorter than the runs (--drain-s 1): the worker ends them and hands their
#     tasks back (re-published, confirmed) before it exits, within Slurm's grace (5 s);
#  3. drain longer than Slurm's grace: SIGKILL (3 s after SIGTERM) ends the worker mid-drain;
#     the leases lapse and explore re-issues the samples;
#  then a fresh worker finishes the campaign. In-flight work is finished or returned,
# never lost: the ledger oracle must find nothing lost and nothing duplicated.
. "$(dirname "$0")/lib.sh"
use_fixture_broker
C="fault-term-$$"
cat >"$T/sim.sh" <<SH
#!/bin/sh
echo "\$\$" >>"$T/starts"
exec "$BIN/specline-sim-faulty" --mode 7 "\$@"
SH
chmod +x "$T/sim.sh"
# runs of ~6 s (30 steps x 0.2 s)
cat >"$T/config.yaml" <<YAML
experiment: $C
inputs:
  - {name: a, type: float, value_range: [0.0, 1.0]}
outputs:
  - {name: y, type: float}
simulator: {command: ["$T/sim.sh"], max_steps: 30, step_delay: 0.2, wall_s: 60, term_grace_s: 1}
policy: {initial: sobol, initial_n: 4, acquisition: none, oversubscribe: 1, seed: 9}
budget: {max_sims: 8, wall_s: 300}
workers: {simulate_workers: 1, slots: 2}
store: sqlite:$T/store.db
YAML
ledger_tap "$C"
touch "$T/starts"
starts() { wc -l <"$T/starts"; }
starts_ge() { [ "$(starts)" -ge "$1" ]; }
# exits_within PID SECONDS: waits for PID to end by itself; sets RC (status) and DT (seconds)
exits_within() {
  local t0=$SECONDS end=$((SECONDS + $2))
  while alive "$1" && [ $SECONDS -lt $end ]; do sleep 0.1; done
  DT=$((SECONDS - t0))
  if alive "$1"; then RC=alive; else
    wait "$1"
    RC=$?
  fi
}

start store "$BIN/specline-store" "$T/config.yaml"
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 4

# 1. SIGTERM with a long drain: the runs finish
start simA "$BIN/specline-simulate" "$T/config.yaml" --slots 2 --lease-ack-s 1 --drain-s 30
check "worker A runs 2 simulations" wait_for 60 starts_ge 2
sleep 2
log "SIGTERM to worker A (drain 30 s)"
kill -TERM "${WPID[simA]}"
exits_within "${WPID[simA]}" 20
echo "  A: $(logs simA | grep -o 'drained: .*')"
check "A ended by itself after draining (status $RC, ${DT}s)" eq "$RC" 0
check "A finished its 2 runs" eq "$(logs simA | grep -c 'drained: 2 done, 0 failed, 0 terminated, 0 returned')" 1

# 2. SIGTERM with a short drain: the runs are ended and their tasks handed back
n=$(starts)
start simB "$BIN/specline-simulate" "$T/config.yaml" --slots 2 --lease-ack-s 1 --drain-s 1
check "worker B runs 2 simulations" wait_for 60 starts_ge $((n + 2))
sleep 2
log "SIGTERM to worker B (drain 1 s), SIGKILL after a 5 s grace"
kill -TERM "${WPID[simB]}"
exits_within "${WPID[simB]}" 5
rcB=$RC
[ "$rcB" = alive ] && kill -9 "${WPID[simB]}"
echo "  B: $(logs simB | grep -o 'drained: .*')"
check "B ended by itself within the grace (status $rcB, ${DT}s)" eq "$rcB" 0
# its 2 runs, and the tasks it held ready for the next free slot (prefetch 2 x slots)
check "B handed back its 2 running tasks (and those waiting)" test "$(logs simB | grep -oE 'drained: .* [0-9]+ returned' | grep -oE '[0-9]+ returned' | cut -d' ' -f1)" -ge 2

# 3. SIGTERM, then SIGKILL mid-drain (the drain is longer than the grace)
n=$(starts)
start simC "$BIN/specline-simulate" "$T/config.yaml" --slots 2 --lease-ack-s 1 --drain-s 60
check "worker C runs 2 simulations" wait_for 60 starts_ge $((n + 2))
sleep 2
log "SIGTERM to worker C (drain 60 s), SIGKILL after a 3 s grace"
kill -TERM "${WPID[simC]}"
sleep 3
alive "${WPID[simC]}" && killed=1 || killed=0
kill -9 "${WPID[simC]}" 2>/dev/null
wait "${WPID[simC]}" 2>/dev/null
check "C was still draining when SIGKILL came" eq "$killed" 1

# 4. a fresh worker finishes the campaign
start simD "$BIN/specline-simulate" "$T/config.yaml" --slots 2
exits_within "${WPID[explore]}" 150
log "campaign ended: explore status $RC"
kill "${WPID[simD]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[simD]}" "${WPID[store]}" 2>/dev/null
ledger_report "$C"
echo "simulator starts: $(starts); points: $(sql "select status || ':' || count(*) from \"$C\" group by status")"
check "the campaign completed (explore exit 0)" eq "$RC" 0
check "every stored point is complete (none failed by the shutdowns)" \
  eq "$(sql "select count(*) from \"$C\" where status != 'complete'")" 0
check "exactly the budget stored ($STORED == 8)" eq "$STORED" 8
ledger_checks
finish
