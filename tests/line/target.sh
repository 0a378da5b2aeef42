#!/usr/bin/env bash
# budget.target_nrmse ends a campaign: y = a + b is learnt to well under 10% after a few
# dozen runs, so `specline run` finishes long before max_sims (300), with the reason named,
# and the model that ended it is in the store with its NRMSE at or below the target.
. "$(dirname "$0")/lib.sh"
C="line-target-$$"
cat >"$T/config.yaml" <<YAML
experiment: $C
inputs:
  - {name: a, type: float, value_range: [0.0, 1.0]}
  - {name: b, type: float, value_range: [0.0, 1.0]}
outputs:
  - {name: y, type: float}
simulator: {command: ["specline-sim-noop"], max_steps: 1}
policy: {initial: sobol, initial_n: 16, acquisition: max_std, oversubscribe: 2, seed: 3}
budget: {max_sims: 300, target_nrmse: 0.1, wall_s: 200}
learn: {ensemble: 3, hidden: 16, layers: 1, epochs: 50, retrain_every: 8, validation_fraction: 0.25}
workers: {simulate_workers: 1, slots: 2}
store: sqlite:$T/store.db
YAML
timeout 240 "$BIN/specline" run "$T/config.yaml" --no-progress >"$T/run.log" 2>&1 || rc=$?
check "specline run exits 0" eq "$rc" 0
n=$(sql "select count(*) from \"$C\"")
echo "  stored $n points"
check "ended well before max_sims" test "$n" -lt 300
check "at least the initial design stored" test "$n" -ge 16
check "the reason is the target" grep -q "target_nrmse 0.1 reached" "$T/run.log"
best=$(sql "select min(json_extract(metrics,'\$.nrmse')) from models where campaign='$C' and kind='surrogate'")
echo "  best model nrmse $best"
check "a stored model is at or below the target" awk -v v="$best" 'BEGIN{exit !(v != "" && v <= 0.1)}'
check "every stored point complete" eq "$(sql "select count(*) from \"$C\" where status='complete'")" "$n"
finish
