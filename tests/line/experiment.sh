#!/usr/bin/env bash
# Experiments in the loop on the real broker: a campaign of simulations, then the
# experiment team's shots (one bad file refused whole, a good one stored once even when
# submitted twice), then learn trains the surrogate and an elevated model on the shots,
# and predict serves either.
. "$(dirname "$0")/lib.sh"
C="line-exp-$$"
EX="$SRC/examples/oscillator-experiment"
sed -e "s/^experiment: .*/experiment: $C/" -e "s#^store: .*#store: sqlite:$T/store.db#" \
    -e "s/budget: .*/budget: {max_sims: 40, wall_s: 200}/" \
    -e "s/speculative: {enabled: true/speculative: {enabled: false/" "$EX/config.yaml" >"$T/config.yaml"
timeout 200 "$BIN/specline" run "$T/config.yaml" --no-progress --no-model >"$T/run.log" 2>&1 || rc=$?
check "the simulation campaign completes" eq "$rc" 0
# a file with one bad row: refused whole, naming file:line and the reason
head -6 "$EX/shots-train.csv" >"$T/bad.csv"
sed -i '4s/^\([^,]*\),[^,]*,/\1,lots,/' "$T/bad.csv"
rc=0; "$BIN/specline" shot submit "$T/config.yaml" "$T/bad.csv" >"$T/bad.out" 2>&1 || rc=$?
check "a bad shots file is refused" eq "$rc" 1
check "the error names bad.csv:4 and the reason" grep -q "bad.csv:4:2: .*number" "$T/bad.out"
check "nothing of it was published" eq "$(queue_depth "$C.store")" 0
"$BIN/specline" shot submit "$T/config.yaml" "$EX/shots-train.csv" >"$T/shots.out" 2>&1
check "the good file is published" grep -q "20 published" "$T/shots.out"
"$BIN/specline" shot submit "$T/config.yaml" "$EX/shots-train.csv" >>"$T/shots.out" 2>&1
start store "$BIN/specline-store" "$T/config.yaml"
stored() { [ "$(sql "select count(*) from \"$C\" where experimental_flag=1")" = 20 ] && [ "$(queue_depth "$C.store")" = 0 ]; }
check "resubmitting stores nothing twice (20 shots)" wait_for 30 stored
start learn "$BIN/specline-learn" "$T/config.yaml" --min-points 16
start predict "$BIN/specline-predict" "$T/config.yaml"
elevated() { grep -q "elevated model" "$T/learn.log"; }
check "learn makes an elevated model from the shots" wait_for 120 elevated
grep "elevated model" "$T/learn.log" | tail -1 | sed 's/^.*\] /  /'
check "both models are in the store" eq "$(sql "select count(distinct kind) from models")" 2
served() { "$BIN/specline" predict "$T/config.yaml" --online --model elevated --json >"$T/pe.json" 2>>"$T/pe.log" && grep -q elevated "$T/pe.json"; }
check "predict serves the elevated model" wait_for 30 served
check "predict serves the surrogate" "$BIN/specline" predict "$T/config.yaml" --online --json
finish
