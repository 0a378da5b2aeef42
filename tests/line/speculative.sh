#!/usr/bin/env bash
# The surrogate in the loop on the real broker: learn retrains as points arrive, predict
# serves predictions, explore stops runs that track the prediction (speculatively) and
# audits a fraction of the stops with full re-runs; stops and audits show in `specline
# results`. The simulator is the user's own script: a ramp x(t) = a·t + b, easy to learn.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ramp_fixture.sh"
C="line-spec-$$"
ramp_campaign "$C" "max_sims: 44, wall_s: 240"
start store "$BIN/specline-store" "$T/config.yaml"
start learn "$BIN/specline-learn" "$T/config.yaml" --min-points 8
start predict "$BIN/specline-predict" "$T/config.yaml"
start sim0 "$BIN/specline-simulate" "$T/config.yaml" --slots 2 --id "$C-sim0"
start sim1 "$BIN/specline-simulate" "$T/config.yaml" --slots 2 --id "$C-sim1"
"$BIN/specline-explore" "$T/config.yaml" --lease-s 15 >"$T/explore.log" 2>&1 &
EXPLORE=$!; PIDS+=($EXPLORE)
model_ready() { grep -q "using model" "$T/explore.log"; }
check "explore gets a model from learn" wait_for 120 model_ready
"$BIN/specline" predict "$T/config.yaml" --online --input a=1.2 --input b=0.1 --json >"$T/predict.json" 2>>"$T/predict.log"
check "predict serves a prediction" test -s "$T/predict.json"
y=$(python3 -c "import json;print(json.load(open('$T/predict.json'))['outputs']['y']['mean'])" 2>/dev/null || echo nan)
check "the prediction is close to the truth (y=1.3, got $y)" python3 -c "import sys; sys.exit(0 if abs($y-1.3)<0.25 else 1)"
check "the campaign completes" wait_for 200 bash -c "! kill -0 $EXPLORE 2>/dev/null"
rc=0; wait $EXPLORE || rc=$?
check "explore exits 0" eq "$rc" 0
check "44 points stored" eq "$(sql "select count(*) from \"$C\"")" 44
n_models=$(grep -c "using model" "$T/explore.log" || true)
check "learn retrained several times ($n_models models used)" test "$n_models" -ge 3
stops=$(sql "select count(*) from \"$C\" where status='terminated' and error='speculative'")
check "runs were stopped speculatively ($stops)" test "$stops" -ge 1
check "every stop carries the prediction it relied on" eq "$(sql "select count(*) from \"$C\" where status='terminated' and (predicted is null or predicted='{}')")" 0
check "a stopped run's history is partial" test "$(sql "select max(steps) from \"$C\" where status='terminated'")" -lt 40
audits=$(sql "select count(*) from \"$C\" where origin='audit'")
check "stops were audited with full re-runs ($audits)" test "$audits" -ge 1
check "audits are complete runs" eq "$(sql "select count(*) from \"$C\" where origin='audit' and status!='complete'")" 0
"$BIN/specline" results "$T/config.yaml" --csv >"$T/results.csv"
check "results show the stops" test "$(grep -c ',terminated,' "$T/results.csv")" -eq "$stops"
check "results show the audits" test "$(grep -c ',audit' "$T/results.csv")" -ge "$audits"
grep -E "stopping|audit:" "$T/explore.log" | head -5
finish
