#!/usr/bin/env bash
# Bundles (simulator.bundle: 8): several tasks per <c>.sim message and several points per
# <c>.store message. Part 1, with no explore: a hand-made bundle of sim.tasks holding a
# malformed entry and one of another campaign, and a bundle of store.points holding a bad
# point: each bad entry is dead-lettered alone (into <c>.dead, naming its queue), every good
# one is stored. Part 2, the whole line (explore -> simulate -> store) with bundles: tasks
# really travel in bundles, a sample terminated while its bundle is running is stored as
# terminated, and the campaign stores exactly its budget with no duplicate.
. "$(dirname "$0")/lib.sh"
FBIN=${SPECLINE_FAULT_BIN:?}
C="line-bundle-$$"
CP="$C-poison"
config() { # config CAMPAIGN MAX_SIMS STEP_DELAY MAX_STEPS: $T/CAMPAIGN.yaml
  osc_yaml "$T/$1.yaml" experiment="$1" max_sims="$2" step_delay="$3" max_steps="$4" bundle=8 \
    persistent="${PERSISTENT:+true}" seed=5 wall_s=200 slots=4 store="sqlite:$T/store.db"
}

# ---- part 1: bad entries inside bundles, on both hops ----
config "$CP" 10 0 50
start pstore "$BIN/specline-store" "$T/$CP.yaml"
start psim "$BIN/specline-simulate" "$T/$CP.yaml" --slots 2 --id "$CP-sim"
consumers() { [ "$(ctl -q list_queues name consumers | awk -v q="$1" '$1==q{print $2}')" = 1 ]; }
both_consume() { consumers "$CP.sim" && consumers "$CP.store"; }
check "simulate and store consume" wait_for 30 both_consume
task() { # task SAMPLE CAMPAIGN
  printf '{"v":1,"kind":"sim.task","campaign":"%s","sample_id":"%s","inputs":{"zeta":0.1,"omega0":1.0,"F":0.5,"omega":1.1,"x0":0.2},"max_steps":50,"speculative":false,"origin":"initial","issued_at":0}' "$2" "$1"
}
point() { # point SAMPLE STATUS
  printf '{"v":1,"kind":"store.point","campaign":"%s","sample_id":"%s","experimental_flag":false,"inputs":{"zeta":0.2,"omega0":1.0,"F":0.5,"omega":1.1,"x0":0.2},"outputs":{"amplitude":1.5,"max_abs_x":0.5},"status":"%s","steps":3,"wall_s":0.1,"produced_at":1.5}' "$CP" "$1" "$2"
}
printf '{"v":1,"kind":"bundle","items":[%s,%s,%s,%s,%s]}' "$(task good1 "$CP")" \
  "{\"v\":1,\"kind\":\"sim.task\",\"campaign\":\"$CP\",\"sample_id\":\"bad1\"}" "$(task good2 "$CP")" \
  "$(task foreign1 other-campaign)" "$(task good3 "$CP")" >"$T/tasks.json"
printf '{"v":1,"kind":"bundle","items":[%s,%s,%s]}' "$(point good4 complete)" "$(point bad2 bogus)" \
  "$(point good5 failed)" >"$T/points.json"
check "a bundle of 5 tasks published" "$FBIN/fault_amqp" publish specline "$CP.sim" "$T/tasks.json"
check "a bundle of 3 points published" "$FBIN/fault_amqp" publish specline "$CP.store" "$T/points.json"
stored_is() { [ "$(sql "select count(*) from \"$CP\"" 2>/dev/null)" = "$1" ]; }
check "the 5 good entries stored" wait_for 30 stored_is 5
sleep 1
check "exactly the good ones, once each" eq "$(sql "select group_concat(sample_id) from (select sample_id from \"$CP\" order by sample_id)")" \
  "good1,good2,good3,good4,good5"
check "simulate still running" kill -0 "$PID_psim"
check "store still running" kill -0 "$PID_pstore"
kill "$PID_psim" "$PID_pstore"
"$FBIN/fault_amqp" drain "$CP.dead" >"$T/dead.txt"
echo "  dead letters (sample, reason, queue):"
grep -v '^#' "$T/dead.txt" | cut -f1-3 | sed 's/^/    /'
check "3 dead letters, the bad entries alone" eq "$(grep -vc '^#' "$T/dead.txt")" 3
check "bad1 dead-lettered from $CP.sim" grep -qP "^bad1\trejected\t$CP.sim\t" "$T/dead.txt"
check "foreign1 dead-lettered from $CP.sim" grep -qP "^foreign1\trejected\t$CP.sim\t" "$T/dead.txt"
check "bad2 dead-lettered from $CP.store" grep -qP "^bad2\trejected\t$CP.store\t" "$T/dead.txt"
check "simulate logged the bad entry with its reason" grep -q "dead-lettering a sim.task of a bundle: field 'inputs': missing" "$T/psim.log"
check "store logged the bad point with its reason" grep -q "dead-lettering a store message of a bundle" "$T/pstore.log"

# ---- part 2: the line with bundles, a terminate inside a bundle ----
MAX=24
config "$C" $MAX 0.02 200
"$FBIN/fault_amqp" tap "$C" "$C.bundle-tap" "$C.sim"
start_line "$T/$C.yaml" "$C" 4
check "samples are running" wait_for 60 running "$T/$C.yaml"
S=$(head -1 "$T/list.txt" | cut -d' ' -f1)
echo "  running: $(tr '\n' ';' <"$T/list.txt")"
check "terminate of '$S' stored as terminated" "$BIN/specline" sim terminate "$T/$C.yaml" "$S" --wait 20
check "its status is terminated" eq "$(sql "select status from \"$C\" where sample_id='$S'")" terminated
ended() { ! kill -0 "$PID_explore" 2>/dev/null; }
check "the campaign ends" wait_for 150 ended
wait "$PID_explore" && rc=0 || rc=$?
check "explore exits 0" eq "$rc" 0
check "exactly the budget stored" eq "$(sql "select count(*) from \"$C\"")" $MAX
check "no duplicate" eq "$(sql "select count(distinct sample_id) from \"$C\"")" $MAX
check "every point written once" eq "$(sql "select count(*) from \"$C\" where writes > 1")" 0
"$FBIN/fault_amqp" drain "$C.bundle-tap" >"$T/tap.txt"
msgs=$(sed -n 's/^# \([0-9]*\) messages.*/\1/p' "$T/tap.txt")
items=$(grep -vc '^#' "$T/tap.txt")
echo "  <c>.sim carried $items tasks in $msgs messages"
check "tasks travelled in bundles ($items tasks > $msgs messages)" test "$items" -gt "${msgs:-0}"
inb=$(awk -F'\t' -v s="$S" '$1==s{print $8}' "$T/tap.txt" | head -1)
check "the terminated sample came in a bundle (of ${inb:-?})" test "${inb:-0}" -gt 1
check "nothing dead-lettered" eq "$("$FBIN/fault_amqp" count "$C.dead")" 0
finish
