#!/usr/bin/env bash
# `specline sim terminate` on a running sample: it is stored as terminated with its partial
# history, and its slot takes the next task. PERSISTENT=1: with a persistent simulator (the
# terminate control line).
. "$(dirname "$0")/lib.sh"
C="line-terminate-$$"
cat >"$T/config.yaml" <<YAML
experiment: $C
inputs:
  - {name: zeta,   type: float, value_range: [0.05, 0.5]}
  - {name: omega0, type: float, value_range: [0.5, 2.0]}
  - {name: F,      type: float, value_range: [0.1, 1.0]}
  - {name: omega,  type: float, value_range: [0.5, 2.0]}
  - {name: x0,     type: float, value_range: [-1.0, 1.0]}
outputs:
  - {name: amplitude, type: float}
  - {name: max_abs_x, type: float}
history: {name: x, checkpoints: 8}
simulator: {command: ["specline-sim-oscillator"], max_steps: 400, step_delay: 0.02${PERSISTENT:+, persistent: true}}
policy: {initial: sobol, initial_n: 4, acquisition: none, oversubscribe: 1, seed: 3}
budget: {max_sims: 2, wall_s: 120}
workers: {simulate_workers: 1, slots: 1}
store: sqlite:$T/store.db
YAML
start store "$BIN/specline-store" "$T/config.yaml"
start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 10
start sim "$BIN/specline-simulate" "$T/config.yaml" --slots 1 --id "$C-sim"
# sim list: 'SAMPLE_ID WORKER step N' per running sample, then one 'queued: ...' line
running() {
  "$BIN/specline" sim list "$T/config.yaml" --wait 1.5 >"$T/list.all" 2>>"$T/list.log" &&
    grep -v '^queued: ' "$T/list.all" >"$T/list.txt" && [ -s "$T/list.txt" ]
}
check "a sample is running" wait_for 60 running
S=$(head -1 "$T/list.txt" | cut -d' ' -f1)
echo "  running: $(head -1 "$T/list.txt"); $(grep '^queued: ' "$T/list.all")"
check "sim list shows the running sample's step" grep -q "^$S $C-sim step [0-9-]" "$T/list.txt"
check "sim list shows the queued samples apart" grep -q "^queued: [0-9]* in $C.sim, [0-9]* prefetched" "$T/list.all"
sleep 1
check "terminate reports it stored as terminated" "$BIN/specline" sim terminate "$T/config.yaml" "$S" --wait 20
check "stored as terminated" eq "$(sql "select status from \"$C\" where sample_id='$S'")" terminated
n=$(sql "select json_array_length(json_extract(history,'\$.x')) from \"$C\" where sample_id='$S'")
check "partial history kept (0 < $n < 400)" test "$n" -gt 0 -a "$n" -lt 400
check "steps recorded equal the history" eq "$(sql "select steps from \"$C\" where sample_id='$S'")" "$n"
check "reason recorded" eq "$(sql "select error from \"$C\" where sample_id='$S'")" operator
next_running() { running && ! grep -q "^$S " "$T/list.txt"; }
check "the slot takes the next task" wait_for 20 next_running
finish
