#!/usr/bin/env bash
# The surrogate in the loop under faults (issue 13): a campaign with a learner, a predict
# worker, `acquisition: max_std` and speculative termination (with audits) on a broker of
# the test's own, while kill -9 hits every worker kind in turn (simulate, store, learn,
# explore, predict; explore twice, once while stops are being decided) and the broker is
# killed -9 and restarted. Poison store.points are injected once. At the end, from the
# store and the broker:
#   - exactly max_sims distinct points, none failed, none lost or duplicated (ledger oracle);
#   - origins are true: only initial / explore / audit (a re-issued task keeps its sample's
#     origin), the 16 of the initial design initial, at least one explore and one audit,
#     and every stored point's origin is the one its first sim.task said;
#   - runs were stopped speculatively, and every stop carries its prediction;
#   - nothing produced or rewritten after explore declared the end, even with the simulate
#     and store workers kept running for a while after it;
#   - every model in the store was announced (event.model reached the broker: a tap on
#     <c>.event.model), and predict answers after its kill and the broker restart;
#   - <c>.dead holds exactly the poison messages injected, nothing else.
# The simulator is a user's script, x(t) = a·t + b (40 steps of 0.05 s), easy to learn so
# that stops begin within the budget. FAULT_SEED picks the kill moments' jitter.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../line/ramp_fixture.sh"
own_broker --no-management
C="fault-spec-$$"
SEED=${FAULT_SEED:-$$}
RANDOM=$SEED
MAX_SIMS=56
echo "seed $SEED"
ramp_campaign "$C" "max_sims: $MAX_SIMS, wall_s: 600, max_failed: 0"
ledger_tap "$C"
"$FBIN/fault_amqp" tap "$C" "$C.fault-models" "$C.event.model" || {
  echo "FAIL cannot bind the model tap"
  exit 1
}

# a lease longer than the workers' reconnect backoff (5 s at most) plus a checkpoint:
# explore renews the leases in flight when it reconnects, and the simulate workers must
# be able to report again within one lease after that
LEASE=10
start_worker() { # start_worker NAME: (re)starts one worker of the campaign
  case $1 in
  store) start store "$BIN/specline-store" "$T/config.yaml" ;;
  learn) start learn "$BIN/specline-learn" "$T/config.yaml" --min-points 8 ;;
  predict) start predict "$BIN/specline-predict" "$T/config.yaml" ;;
  sim1 | sim2) start "$1" "$BIN/specline-simulate" "$T/config.yaml" --slots 2 --id "$C-$1" ;;
  explore) start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s $LEASE ;;
  esac
}
for w in store learn predict sim1 sim2 explore; do start_worker "$w"; done

declare -A KILLED=()
# kill9 NAME: kill -9 of the worker (a random 0 .. 0.5 s after the moment came), restarted
kill9() {
  local pid=${WPID[$1]}
  sleep "0.$((RANDOM % 50))"
  if ! alive "$pid"; then
    echo "  $1 ($pid) was not running"
    return 1
  fi
  log "kill -9 of $1 ($pid); stored $(stored_now), models $(models_now)"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  KILLED[$1]=$((${KILLED[$1]:-0} + 1))
  if [ "$1" = explore ]; then # a mark in the ledger tap: every task before it is the dead explorer's
    sleep 0.3
    "$FBIN/fault_amqp" mark "$LEDGER_Q" "-mark-explore-killed-${KILLED[$1]}" || echo "  cannot mark the ledger tap"
  fi
  start_worker "$1"
}
models_now() { sql "select count(*) from models where campaign='$C'" 2>/dev/null || echo 0; }
stops_now() { sql "select count(*) from \"$C\" where status='terminated' and error='speculative'" 2>/dev/null || echo 0; }
stored_ge() { [ "$(stored_now)" -ge "$1" ]; }
explore_running() { alive "${WPID[explore]}"; }
# at N: waits until N points are stored (the campaign is under way: runs in flight)
at() {
  wait_for 120 stored_ge "$1" || echo "  only $(stored_now) stored after 120 s (waited for $1)"
  explore_running || echo "  explore is no longer running (status of the campaign: $(stored_now) stored)"
}
all_reconnected() {
  local w
  for w in store learn predict sim1 sim2 explore; do
    [ "$(logs $w | grep -c 'reconnected to')" -ge 1 ] || return 1
  done
}
group_gone() { ! ps -o pid= -g "$1" >/dev/null 2>&1; }

at 5 && kill9 sim1
at 9 && kill9 store
trained() { [ "$(models_now)" -ge 1 ]; }
wait_for 120 trained || echo "  no model after 120 s"
at 14 && kill9 learn # retrain_every 4: learn is training most of the time
at 17 && kill9 explore
kill9 predict
at 22
pg=$(broker_pgid)
log "kill -9 of the broker's process group $pg (stored $(stored_now))"
kill -9 -- "-$pg"
wait_for 20 group_gone "$pg" || echo "  process group $pg still alive"
broker_ok=0
if "$FBIN/fault_broker" restart "$BROKER_DIR" >"$T/broker-restart.log" 2>&1; then
  broker_ok=1
else
  cat "$T/broker-restart.log"
fi
broker_env
wait_for 60 all_reconnected || echo "  not every worker reconnected"
"$FBIN/fault_amqp" poison "$C" store.point specline "$C.store" >"$T/poison.out" 2>"$T/poison.err"
grep -v '^#' "$T/poison.out" | cut -d' ' -f1 | sort >"$T/poison.names"
log "$(wc -l <"$T/poison.names") poison store.points injected into $C.store"
# the second explore kill while stops are decided: the first stop, or late in the budget
stopped_or_late() { [ "$(stops_now)" -ge 1 ] || [ "$(stored_now)" -ge 40 ]; }
wait_for 120 stopped_or_late || echo "  no stop and only $(stored_now) stored after 120 s"
log "stops so far: $(stops_now)"
kill9 explore
kill9 sim2
at 44 && kill9 store

wait_explore 150
end_line=$(logs explore | grep "campaign finished" | tail -1)
echo "  $end_line"
end_at=$(date -d "$(echo "$end_line" | cut -d' ' -f1)" +%s.%N 2>/dev/null || date +%s.%N)
snap() { sql "select count(*) || ' ' || coalesce(sum(writes),0) || ' ' || coalesce(max(produced_at),0) from \"$C\""; }
snap1=$(snap)
# the simulate and store workers keep running past the end: nothing more may run or be stored
sleep 8 # 4 runs long
snap2=$(snap)
after_end=$(sql "select count(*) from \"$C\" where produced_at > $end_at")
"$BIN/specline" predict "$T/config.yaml" --online --input a=1.2 --input b=0.1 --json \
  >"$T/predict.json" 2>"$T/predict.err"
predict_rc=$?
for w in store learn predict sim1 sim2; do kill "${WPID[$w]}" 2>/dev/null; done
for w in store learn predict sim1 sim2; do wait "${WPID[$w]}" 2>/dev/null; done

ledger_report "$C"
# The lost ids (issued, neither stored nor dead-lettered) must all be tasks of a killed
# explorer: its successor purges <c>.sim and plans anew by acquisition with its own model,
# so a task that was still queued, or ran on a worker killed with it, is dropped (the
# budget counts only stored points). Such a task was last published before an explore-kill
# mark; nothing the last explorer published may be lost.
grep -v '^#' "$T/tap.txt" | cut -f1 | awk '{ if ($0 ~ /^-mark-explore-killed-/) m = NR; else last[$0] = NR }
  END { for (id in last) print id "\t" (last[id] < m ? "dropped" : "live") }' | sort >"$T/last.tsv"
comm -23 "$T/issued.ids" "$T/accounted.ids" >"$T/lost.ids"
DROPPED=$(join -t $'\t' "$T/lost.ids" "$T/last.tsv" | awk -F'\t' '$2 == "dropped"' | wc -l)
LOST_LIVE=$(($(wc -l <"$T/lost.ids") - DROPPED))
MARKS=$(grep -c '^-mark-explore-killed-' "$T/tap.txt")
echo "lost = $(wc -l <"$T/lost.ids"): $DROPPED tasks of killed explorers (dropped by their successors), $LOST_LIVE others"
# origins: each stored point's origin is the one its first sim.task said (the tap's order)
"$FBIN/fault_amqp" drain "$C.fault-models" >"$T/models.txt" || echo "  (cannot drain the model tap)"
grep -v '^#' "$T/tap.txt" | awk -F'\t' '!seen[$1]++ { print $1 "|" $6 }' | sort >"$T/first-origin.txt"
sql "select sample_id || '|' || coalesce(origin, '-') from \"$C\"" | sort >"$T/stored-origin.txt"
origin_changed=$(comm -23 "$T/stored-origin.txt" "$T/first-origin.txt" | wc -l)
comm -23 "$T/stored-origin.txt" "$T/first-origin.txt" | head -5 | sed 's/^/  origin not as first issued: /'
grep -v '^#' "$T/models.txt" | cut -f7 | grep -v '^-$' | sort -u >"$T/announced.ids"
sql "select model_id from models where campaign='$C'" | sort -u >"$T/models.ids"
unannounced=$(comm -23 "$T/models.ids" "$T/announced.ids" | wc -l)
grep -v '^#' "$T/dead.txt" | cut -f4 | sort >"$T/dead.names"
origins=$(sql "select coalesce(origin,'(none)') || ':' || count(*) from \"$C\" group by origin" | tr '\n' ' ')
stops=$(stops_now)
audits=$(sql "select count(*) from \"$C\" where origin='audit'")
echo "origins: $origins; stops $stops; models $(wc -l <"$T/models.ids") stored, $(wc -l <"$T/announced.ids") announced"
echo "end: explore at $end_at; store at the end: $snap1; 8 s later: $snap2 (count, writes, newest produced_at)"
echo "kills: $(for k in "${!KILLED[@]}"; do printf '%s=%s ' "$k" "${KILLED[$k]}"; done)broker=1"

check "the campaign completed (explore exit 0)" eq "$explore_done" 0
for w in sim1 store learn explore predict sim2; do
  check "$w was killed -9 and restarted (${KILLED[$w]:-0})" test "${KILLED[$w]:-0}" -ge 1
done
check "the broker was killed -9 and restarted" eq "$broker_ok" 1
check "exactly the budget stored ($STORED == $MAX_SIMS)" eq "$STORED" $MAX_SIMS
check "nothing lost but the queued tasks of killed explorers ($LOST_LIVE)" eq "$LOST_LIVE" 0
check "at most slots x oversubscribe = 8 tasks dropped per explore kill ($DROPPED, $MARKS kills)" \
  test "$DROPPED" -le $((8 * MARKS))
check "nothing duplicated (rows - distinct ids = $DUP)" eq "$DUP" 0
check "nothing stored that was not issued ($PHANTOM)" eq "$PHANTOM" 0
check "no failed point" eq "$(sql "select count(*) from \"$C\" where status='failed'")" 0
check "origins only initial/explore/audit ($origins)" \
  eq "$(sql "select count(*) from \"$C\" where origin is null or origin not in ('initial','explore','audit')")" 0
check "the initial design is stored as initial" eq "$(sql "select count(*) from \"$C\" where origin='initial'")" 16
check "acquisition chose points (origin explore)" test "$(sql "select count(*) from \"$C\" where origin='explore'")" -ge 1
check "every point's origin is its first issue's ($origin_changed differ)" eq "$origin_changed" 0
check "runs were stopped speculatively ($stops)" test "$stops" -ge 1
check "every stop carries the prediction it relied on" \
  eq "$(sql "select count(*) from \"$C\" where status='terminated' and (predicted is null or predicted='{}')")" 0
check "stops were audited with full re-runs ($audits)" test "$audits" -ge 1
check "nothing stored or rewritten after the end ($snap1 -> $snap2)" eq "$snap2" "$snap1"
check "no point produced after explore declared the end ($after_end)" eq "$after_end" 0
check "the sim queue is empty after the end" eq "$(queue_depth "$C.sim")" 0
check "models were stored ($(wc -l <"$T/models.ids"))" test "$(wc -l <"$T/models.ids")" -ge 2
check "every stored model was announced ($unannounced not)" eq "$unannounced" 0
check "predict answers after its kill and the broker restart" eq "$predict_rc" 0
check "$C.dead holds exactly the injected poison ($(wc -l <"$T/dead.names") dead-lettered)" \
  eq "$(tr '\n' ' ' <"$T/dead.names")" "$(tr '\n' ' ' <"$T/poison.names")"
finish
