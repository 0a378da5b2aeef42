#!/usr/bin/env bash
# A campaign on the real broker through `specline run`: every issued sample is stored
# exactly once, and `specline results` shows them all.
. "$(dirname "$0")/lib.sh"
C="line-campaign-$$"
osc_yaml "$T/config.yaml" experiment="$C" checkpoints=16 max_steps=100 persistent="${PERSISTENT:+true}" \
  seed=7 max_sims=30 wall_s=240 simulate_workers=2 slots=2 store="sqlite:$T/store.db"
timeout 240 "$BIN/specline" run "$T/config.yaml" --no-progress >"$T/run.log" 2>&1 || rc=$?
check "specline run exits 0" eq "$rc" 0
check "30 points stored" eq "$(sql "select count(*) from \"$C\"")" 30
check "30 distinct sample ids" eq "$(sql "select count(distinct sample_id) from \"$C\"")" 30
check "all complete" eq "$(sql "select count(*) from \"$C\" where status='complete'")" 30
check "each with its 100-step history" eq "$(sql "select count(*) from \"$C\" where json_array_length(json_extract(history,'\$.x'))=100")" 30
check "outputs present" eq "$(sql "select count(*) from \"$C\" where amplitude is not null and max_abs_x > 0")" 30
check "results --csv has a header and 30 rows" eq "$("$BIN/specline" results "$T/config.yaml" --csv | wc -l)" 31
check "results starts with sample_id" eq "$("$BIN/specline" results "$T/config.yaml" --csv | head -1 | cut -d, -f1)" sample_id
check "sim queue left empty" eq "$(queue_depth "$C.sim")" 0
check "store queue left empty" eq "$(queue_depth "$C.store")" 0
finish
