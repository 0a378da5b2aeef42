#!/usr/bin/env bash
# A simulation longer than the broker's consumer_timeout and than many heartbeat intervals
# runs once and is stored once. The test's broker has consumer_timeout = 5 s, a server
# heartbeat of 2 s, and a 1 s channel tick (RabbitMQ 3.10 checks consumer timeouts on each
# channel tick, every 60 s by default, so a 5 s timeout alone would only bite after a
# minute). Each run takes ~20 s (specline-sim-faulty mode 7, 20 steps x 1 s); a wrapper
# appends one line per simulator start to a file.
#  - campaign A, simulate --lease-ack-s 2 (the lease): every sample starts once, is stored
#    once (writes = 1), and the worker's channel is never closed by the broker;
#  - campaign B, the control, simulate --lease-ack-s 600 (holds the delivery for the whole
#    run): proves the timeout is in force (the broker closes the channel with
#    PRECONDITION_FAILED); its samples must still be stored once each.
. "$(dirname "$0")/lib.sh"
own_broker --no-management --consumer-timeout-ms 5000 --heartbeat 2 --tick-ms 1000
echo "broker: consumer_timeout=$(ctl -q eval 'application:get_env(rabbit, consumer_timeout).' 2>/dev/null)" \
  "channel_tick_interval=$(ctl -q eval 'application:get_env(rabbit, channel_tick_interval).' 2>/dev/null)" \
  "heartbeat=$(ctl -q eval 'application:get_env(rabbit, heartbeat).' 2>/dev/null)"

mkcampaign() { # mkcampaign NAME DIR
  local c=$1 d=$2
  mkdir -p "$d"
  cat >"$d/sim.sh" <<SH
#!/bin/sh
echo "\$\$" >>"$d/starts"
exec "$BIN/specline-sim-faulty" --mode 7 "\$@"
SH
  chmod +x "$d/sim.sh"
  cat >"$d/config.yaml" <<YAML
experiment: $c
inputs:
  - {name: a, type: float, value_range: [0.0, 1.0]}
outputs:
  - {name: y, type: float}
simulator: {command: ["$d/sim.sh"], max_steps: 20, step_delay: 1.0, wall_s: 120}
policy: {initial: sobol, initial_n: 2, acquisition: none, oversubscribe: 1, seed: 5}
budget: {max_sims: 2, wall_s: 300}
workers: {simulate_workers: 1, slots: 2}
store: sqlite:$d/store.db
YAML
}
A="fault-ctA-$$"
B="fault-ctB-$$"
mkcampaign "$A" "$T/a"
mkcampaign "$B" "$T/b"
ledger_tap "$A"
"$FBIN/fault_amqp" tap "$B" "$B.fault-ledger" "$B.sim"

start storeA "$BIN/specline-store" "$T/a/config.yaml"
start simA "$BIN/specline-simulate" "$T/a/config.yaml" --slots 2 --lease-ack-s 2
start exploreA "$BIN/specline-explore" "$T/a/config.yaml" --lease-s 8
start storeB "$BIN/specline-store" "$T/b/config.yaml"
start simB "$BIN/specline-simulate" "$T/b/config.yaml" --slots 2 --lease-ack-s 600
start exploreB "$BIN/specline-explore" "$T/b/config.yaml" --lease-s 8
t0=$SECONDS

wait_end() { # wait_end PID LIMIT: sets RC
  local end=$((SECONDS + $2))
  while alive "$1" && [ $SECONDS -lt $end ]; do sleep 0.5; done
  if alive "$1"; then RC=timeout; else
    wait "$1"
    RC=$?
  fi
}
wait_end "${WPID[exploreA]}" 150
rcA=$RC
log "campaign A ended after $((SECONDS - t0)) s: explore status $rcA"
wait_end "${WPID[exploreB]}" 90
rcB=$RC
log "campaign B ended after $((SECONDS - t0)) s: explore status $rcB"
kill "${WPID[simA]}" "${WPID[storeA]}" "${WPID[simB]}" "${WPID[storeB]}" 2>/dev/null
wait "${WPID[simA]}" "${WPID[storeA]}" "${WPID[simB]}" "${WPID[storeB]}" 2>/dev/null

# the ledger of A through the common oracle, B by hand
sqlA() { sqlite3 "$T/a/store.db" "$@"; }
sqlB() { sqlite3 "$T/b/store.db" "$@"; }
ln -sf "$T/a/store.db" "$T/store.db"
ledger_report "$A"
startsA=$(wc -l <"$T/a/starts" 2>/dev/null || echo 0)
startsB=$(wc -l <"$T/b/starts" 2>/dev/null || echo 0)
timeoutsA=$(logs simA | grep -c 'PRECONDITION_FAILED')
timeoutsB=$(logs simB | grep -c 'PRECONDITION_FAILED')
echo "A (lease): simulator starts=$startsA rows=$(sqlA "select count(*) from \"$A\"")" \
  "writes=$(sqlA "select group_concat(writes) from \"$A\"") complete=$(sqlA "select count(*) from \"$A\" where status='complete'")" \
  "wall_s=$(sqlA "select group_concat(round(wall_s,1)) from \"$A\"") channel timeouts=$timeoutsA"
echo "B (control, delivery held): simulator starts=$startsB rows=$(sqlB "select count(*) from \"$B\"")" \
  "writes=$(sqlB "select group_concat(writes) from \"$B\"") channel timeouts=$timeoutsB"
logs simB | grep -m1 'PRECONDITION_FAILED' | sed 's/^/  /'
check "campaign A completed (explore exit 0)" eq "$rcA" 0
check "each run took longer than consumer_timeout and 5 heartbeats (wall_s >= 15)" \
  eq "$(sqlA "select count(*) from \"$A\" where wall_s >= 15")" 2
check "A: each sample's simulator started once (2 starts)" eq "$startsA" 2
check "A: each result stored once (writes = 1)" eq "$(sqlA "select count(*) from \"$A\" where writes = 1 and status = 'complete'")" 2
check "A: the broker never closed the worker's channel for a timeout" eq "$timeoutsA" 0
check "A: the worker never lost the broker" eq "$(logs simA | grep -c 'lost the broker')" 0
check "B (control): the consumer_timeout is in force (channel closed)" test "$timeoutsB" -ge 1
check "B: each sample stored ($(sqlB "select count(*) from \"$B\""))" eq "$(sqlB "select count(*) from \"$B\"")" 2
ledger_checks
finish
