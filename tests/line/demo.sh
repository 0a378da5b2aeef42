#!/usr/bin/env bash
# The README's demo (scripts/demo.sh = `specline run examples/oscillator/config.yaml`) on
# the shared test broker: the example's own config, only the campaign name, the store and
# a smaller budget (128 runs instead of 160, to stay near two minutes) changed. The learner
# trains during the campaign and once more at its end, explore stops runs speculatively,
# a stopped run keeps its predicted tail and finals, and `specline run` ends with the
# one-glance summary.
. "$(dirname "$0")/lib.sh"
C="line-demo-$$"
sed -e "s/^experiment: oscillator/experiment: $C/" \
    -e "s|^store: .*|store: sqlite:$T/store.db|" \
    "$SRC/examples/oscillator/config.yaml" >"$T/config.yaml"
check "the demo config is the example's, renamed" grep -q "experiment: $C" "$T/config.yaml"
# the example's own budget: stops begin once the learner has seen ~70 runs, and with 128
# runs a loaded CI machine once ended the campaign before the first (a rehearsal: 0 stops)
check "with the example's budget of 160 runs" grep -q "max_sims: 160" "$T/config.yaml"
rc=0
"$BIN/specline" run "$T/config.yaml" --no-progress >"$T/summary.txt" 2>"$T/run.log" || rc=$?
check "specline run exits 0" eq "$rc" 0
cat "$T/summary.txt"
models=$(sql "select count(*) from models where campaign='$C' and kind='surrogate'")
check "models were stored during the campaign and at its end ($models)" test "$models" -ge 2
check "a final model was trained at the end" test "$(sql "select count(*) from models where campaign='$C' and model_id like '%-final-%'")" -eq 1
stops=$(sql "select count(*) from \"$C\" where status='terminated' and error='speculative'")
check "runs were stopped speculatively ($stops)" test "$stops" -ge 1
check "every stop keeps its predicted tail and finals" eq "$(sql "select count(*) from \"$C\" where status='terminated' and (json_extract(predicted, '\$.amplitude') is null or json_extract(predicted, '\$.\"amplitude.std\"') is null or json_extract(predicted, '\$.\"log_env.31.std\"') is null)")" 0
check "no stopped run claims measured finals" eq "$(sql "select count(*) from \"$C\" where status='terminated' and amplitude is not null")" 0
check "every stop keeps the finals it had reached, apart (running)" eq "$(sql "select count(*) from \"$C\" where status='terminated' and error='speculative' and (json_extract(doc, '\$.running.amplitude') is null or json_extract(doc, '\$.running.max_abs_x') is null)")" 0
check "the final model trained on the stops' running finals" grep -Eq "; ([1-9][0-9]*) running finals observed at their stops" "$T/summary.txt"
check "the summary counts the runs" grep -Eq "^campaign '$C' done in [0-9]+ s: [0-9]+ runs: [0-9]+ complete, $stops stopped early, 0 failed" "$T/summary.txt"
check "the summary gives the steps saved" grep -Eq "^  steps +[0-9]+ used .* vs [0-9]+ for the same runs complete: saved" "$T/summary.txt"
check "the summary gives stops and audits" grep -Eq "^  stops +$stops, [0-9]+ audited" "$T/summary.txt"
check "the summary gives the final model's NRMSE and coverage" grep -Eq "^  final model +$C-final-.*NRMSE [0-9.]+ .*coverage [0-9.]+" "$T/summary.txt"
check "the final model trained on the stops' predicted entries" grep -Eq "\(([1-9][0-9]*) predicted entries of stopped runs" "$T/summary.txt"
finish
