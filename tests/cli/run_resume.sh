#!/usr/bin/env bash
# `specline run` interrupted and resumed (issue 13): a campaign of max_sims 16 is
# interrupted three times (SIGINT; kill -9 of the run command, every worker and the
# broker; kill -9 of the broker alone) and run again each time; it ends with exactly
# max_sims distinct points, none failed, every point stored before an interruption still
# there; the campaign's clock in the store (explore's running time) grows by at most each
# run's own time, the downtime between runs not counted. The third run must restart the
# broker killed with the second (a killed broker's zombie or reused pid is not "running")
# and store points, and exits non-zero by itself, saying its local broker stopped, once
# that broker is killed. Then: a simulator that does not exist fails `run` in < 30 s with
# a non-zero exit, and a campaign whose every run fails exits 4 with the reason. Every
# wait has a deadline (a run still going after it is killed and fails its check), and
# each phase prints when it ended. Label system.
set -u
# shellcheck source=../osc_campaign.sh
. "$(dirname "$0")/../osc_campaign.sh"
BIN=${SPECLINE_BIN_DIR:?}
export PATH="$BIN:$PATH"
T=$(mktemp -d)
chmod 755 "$T" # the broker runs as user rabbitmq
FAILS=0
trap 'for p in $(pgrep -f "$T/" 2>/dev/null); do kill -9 $p 2>/dev/null; done; rm -rf "$T"' EXIT
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; FAILS=$((FAILS + 1)); fi; }
count() { local n; n=$(sqlite3 -cmd ".timeout 5000" "$T/run/rr.db" "select count(distinct sample_id) from rr ${1:-}" 2>/dev/null); echo "${n:-0}"; }
osc_yaml "$T/config.yaml" experiment=rr outputs=amplitude max_steps=200 step_delay=0.006 seed=3 \
  max_sims=16 wall_s=600 slots=2 store=sqlite:run/rr.db
clock() { local c; c=$(sqlite3 -cmd ".timeout 5000" "$T/run/rr.db" "select running_s from campaign_clock where campaign = 'rr'" 2>/dev/null); echo "${c:-0}"; }
now() { date +%s.%N; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
broker_pid() { sed -n 's/^SPECLINE_BROKER_PID=//p' "$T/run/broker/broker.env" 2>/dev/null; }
start_run() { specline run "$T/config.yaml" --no-model --no-progress "$@" >>"$T/run.log" 2>&1 & RUN=$!; }
T_START=$(date +%s.%N)
phase() { echo "phase: $1 at $(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"; }
wait_stored() { # wait_stored N: until N points are stored (at most 120 s: a loaded machine
  local end=$((SECONDS + 120)) # took 40 s to restart the broker); false if not
  while [ "$(count)" -lt "$1" ] && [ $SECONDS -lt $end ]; do sleep 0.3; done
  [ "$(count)" -ge "$1" ]
}
wait_run() { # wait_run S: the run's exit status, or 124 (run and workers killed) after S s
  local end=$((SECONDS + $1))
  while kill -0 $RUN 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
  if kill -0 $RUN 2>/dev/null; then
    echo "run $RUN still running after $1 s: killed"
    kill -9 $RUN $(pgrep -P $RUN) 2>/dev/null
    wait $RUN 2>/dev/null
    return 124
  fi
  wait $RUN
}
# 1. SIGINT (the broker is kept: run 2 kills it -9 anyway, and a graceful stop and a
# restart cost 30-60 s on a loaded machine)
t0=$(now)
start_run --keep-broker
wait_stored 3
kill -INT $RUN
wait_run 120
rc1=$?
t1=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
n1=$(count)
c1=$(clock)
check "SIGINT: the store's clock holds the running time (0 < $c1 <= $t1 s)" 'le 0.001 $c1 && le $c1 $t1'
sleep 5 # downtime: not running time
check "SIGINT: run exits 130 ($rc1) with points stored ($n1)" '[ $rc1 = 130 ] && [ $n1 -ge 3 ]'
check "SIGINT: every point simulate produced is stored" \
  '[ "$(grep -o "drained: [0-9]* done" "$T/run.log" | tail -1 | grep -o "[0-9]*")" -le "$n1" ]'
phase "SIGINT done"
# 2. kill -9 of every process: the run command, its workers, the broker
t0=$(now)
start_run
wait_stored $((n1 + 3))
ok2=$?
bp=$(broker_pid)
kids=$(pgrep -P $RUN)
kill -9 $RUN $kids 2>/dev/null
[ -n "$bp" ] && kill -9 -- -"$bp" 2>/dev/null
wait $RUN 2>/dev/null
t2=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
sleep 1
n2=$(count)
c2=$(clock)
check "kill -9: the clock grew by run 2's time at most, not the 5 s down (0 < $c2 - $c1 <= $t2 s)" \
  'le 0.001 $(awk -v a=$c2 -v b=$c1 "BEGIN { print a - b }") && le $(awk -v a=$c2 -v b=$c1 "BEGIN { print a - b }") $t2'
check "kill -9 of everything: nothing stored is lost ($n2 >= $n1)" '[ $n2 -ge $n1 ]'
check "run 2 stored new points before its kill ($n2 >= $n1 + 3)" '[ $ok2 = 0 ] && [ $n2 -ge $((n1 + 3)) ]'
phase "kill -9 of everything done"
# 3. kill -9 of the broker alone
L3=$(wc -l <"$T/run.log")
start_run
wait_stored $((n2 + 2))
ok3=$?
bp=$(broker_pid)
kill -9 -- -"$bp" 2>/dev/null
wait_run 120
rc3=$?
n3=$(count)
# the broker killed -9 just before is restarted, not taken for running (its pid can be a
# zombie, or reused): a run that never reached a broker also exits non-zero
check "run 3 reached a broker and stored new points ($n3 >= $n2 + 2)" '[ $ok3 = 0 ] && [ $n3 -ge $((n2 + 2)) ]'
check "run 3 restarted the broker killed with run 2, not taken for running" \
  'tail -n +$((L3 + 1)) "$T/run.log" | grep -q "restarting the campaign" && ! tail -n +$((L3 + 1)) "$T/run.log" | grep -q "broker, still running"'

check "broker killed: run exits non-zero by itself ($rc3)" '[ $rc3 != 0 ] && [ $rc3 != 124 ]'
check "... saying the local broker stopped" 'grep -q "the local broker stopped" "$T/run.log"'
check "broker killed: nothing stored is lost ($n3 >= $n2)" '[ $n3 -ge $n2 ]'
phase "broker kill done"
# resumed to the end; the broker is kept for the two campaigns below (a broker start and
# stop take 10-40 s each on a loaded machine, and are not what they test)
start_run --keep-broker
wait_run 200
rc4=$?
check "resumed: run exits 0 ($rc4)" '[ $rc4 = 0 ]'
check "exactly max_sims distinct points ($(count))" '[ "$(count)" = 16 ]'
check "no row duplicated" '[ "$(sqlite3 "$T/run/rr.db" "select count(*) from rr")" = 16 ]'
check "none failed ($(count "where status = 'failed'"))" '[ "$(count "where status = '"'"'failed'"'"'")" = 0 ]'
check "origins stay true (no 'reissue')" '[ "$(count "where origin not in ('"'"'initial'"'"','"'"'explore'"'"')")" = 0 ]'
phase "resumed to the end"
# a simulator that does not exist
sed -e 's/"specline-sim-oscillator"/"no-such-simulator"/' -e 's/experiment: rr/experiment: rr-missing/' \
  "$T/config.yaml" >"$T/missing.yaml"
t0=$SECONDS
timeout 60 specline run "$T/missing.yaml" --no-model --no-progress --keep-broker >"$T/missing.log" 2>&1
rc=$?
check "a missing simulator fails run in < 30 s (rc $rc, $((SECONDS - t0)) s)" \
  '[ $rc != 0 ] && [ $rc != 124 ] && [ $((SECONDS - t0)) -lt 30 ]'
check "... naming the simulator" 'grep -q "no-such-simulator" "$T/missing.log"'
phase "missing simulator done"
# every run fails
sed -e 's/command: \["specline-sim-oscillator"\]/command: ["sh", "-c", "echo Starting up; exit 3"]/' \
  -e 's/experiment: rr/experiment: rr-fail/' "$T/config.yaml" >"$T/fail.yaml"
timeout 90 specline run "$T/fail.yaml" --no-model --no-progress --keep-broker >"$T/fail.log" 2>&1
rc=$?
check "every run failing: run exits 4 ($rc)" '[ $rc = 4 ]'
check "... with the first failure's reason" 'grep -q "first failure" "$T/fail.log"'
timeout 60 specline broker stop --dir "$T/run/broker" >/dev/null 2>&1
phase "all done"
if [ $FAILS -gt 0 ]; then tail -40 "$T/run.log"; tail -15 "$T/fail.log"; fi
[ $FAILS = 0 ]
