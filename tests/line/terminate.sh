#!/usr/bin/env bash
# `specline sim terminate` on a running sample: it is stored as terminated with its partial
# history, and its slot takes the next task. PERSISTENT=1: with a persistent simulator (the
# terminate control line).
. "$(dirname "$0")/lib.sh"
C="line-terminate-$$"
osc_yaml "$T/config.yaml" experiment="$C" max_steps=400 step_delay=0.02 persistent="${PERSISTENT:+true}" \
  initial_n=4 oversubscribe=1 seed=3 max_sims=2 wall_s=120 slots=1 store="sqlite:$T/store.db"
start_line "$T/config.yaml" "$C" 1
check "a sample is running" wait_for 60 running "$T/config.yaml"
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
next_running() { running "$T/config.yaml" && ! grep -q "^$S " "$T/list.txt"; }
check "the slot takes the next task" wait_for 20 next_running
finish
