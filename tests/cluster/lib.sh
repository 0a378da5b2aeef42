# shellcheck shell=bash disable=SC2034
# Helpers for the cluster tests (sourced after tests/fault/lib.sh, whose workers, campaign
# config and ledger oracle they reuse): the shared 3-node test cluster (ctest fixture
# cluster_start, its DIR in SPECLINE_TEST_CLUSTER_DIR), its nodes by number, the leader of a
# queue, and a cleanup that leaves the cluster whole (every node running, none stopped)
# for the next test whatever happened.
# shellcheck source=../fault/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../fault/lib.sh"
CL=${SPECLINE_TEST_CLUSTER_DIR:?}
BROKER_DIR=$CL
[ -f "$CL/broker.env" ] || {
  echo "FAIL no test cluster in $CL (fixture cluster_start)"
  exit 1
}
# every worker gets the list of the nodes' URLs, as from `. DIR/broker.env`
# shellcheck disable=SC1091
. "$CL/broker.env"
N_NODES=$SPECLINE_CLUSTER_NODES
nodevar() { (. "$CL/broker.env" && eval "echo \"\${SPECLINE_NODE$1_$2}\""); }
# CLUSTER_ONE_URL=I (debugging the scripts without client failover): the workers get node
# I's URL only, and reconnect to it alone
[ -n "${CLUSTER_ONE_URL:-}" ] && SPECLINE_AMQP_URL=$(nodevar "$CLUSTER_ONE_URL" URL)
export SPECLINE_AMQP_URL

node_url() { nodevar "$1" URL; }
node_name() { nodevar "$1" NAME; }
node_pgid() { (. "$CL/node$1/broker.env" && echo "$SPECLINE_BROKER_PID"); }
node_up() { # the node's process group lives and is not stopped
  local pg
  pg=$(node_pgid "$1")
  [ -n "$pg" ] && kill -0 -- "-$pg" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pg/stat" 2>/dev/null)" != T ]
}
# a node that runs, for rabbitmqctl and the oracle's own connections
live_node() {
  local i
  for i in $(seq "$N_NODES"); do node_up "$i" && echo "$i" && return 0; done
  return 1
}
cctl() { "$BIN/specline" broker ctl --dir "$CL" --node "$(live_node)" "$@"; }
# node_of NAME: the number of the node called NAME
node_of() {
  local i
  for i in $(seq "$N_NODES"); do [ "$(node_name "$i")" = "$1" ] && echo "$i" && return 0; done
  return 1
}
leader_of() { cctl -q list_queues name leader 2>/dev/null | awk -v q="$1" '$1==q{print $2}'; }
# online_of QUEUE: how many members of a quorum queue are online
online_of() {
  cctl -q list_queues name online --formatter json 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; q=sys.argv[1]; print(next((len(x["online"]) for x in json.load(sys.stdin) if x["name"]==q), 0))' "$1"
}
# all_online QUEUE...: every member of each queue is online
all_online() {
  local q
  for q in "$@"; do [ "$(online_of "$q")" -ge 3 ] || return 1; done
}

# the oracle's tools talk to one live node (they take one URL), its tap is a quorum queue
mkdir -p "$T/fbin"
cat >"$T/fbin/fault_amqp" <<SH
#!/usr/bin/env bash
. "$CL/broker.env"
for i in \$(seq $N_NODES); do
  u=\$(eval "echo \\\${SPECLINE_NODE\${i}_URL}")
  pg=\$(. "$CL/node\$i/broker.env" && echo "\$SPECLINE_BROKER_PID")
  if kill -0 -- "-\$pg" 2>/dev/null && [ "\$(awk '{print \$3}' /proc/\$pg/stat 2>/dev/null)" != T ]; then break; fi
done
SPECLINE_AMQP_URL=\$u SPECLINE_FAULT_TAP_TYPE=quorum exec "$FBIN/fault_amqp" "\$@"
SH
chmod +x "$T/fbin/fault_amqp"
FBIN=$T/fbin

# init_campaign C: the campaign's queues, created with the cluster's group size (3) through
# one node, so that every worker's declare (three URLs: group size 3) is equivalent
init_campaign() {
  SPECLINE_AMQP_URL=$(node_url "$(live_node)") "$BIN/specline" broker init "$T/config.yaml" \
    --quorum-group-size 3 >"$T/init.out" 2>&1 || {
    cat "$T/init.out"
    echo "FAIL cannot declare the campaign's queues"
    exit 1
  }
}

# cluster_heal: every node continued and running again (the next test needs all three)
cluster_heal() {
  local i pg
  for i in $(seq "$N_NODES"); do
    pg=$(node_pgid "$i")
    [ -n "$pg" ] && kill -CONT -- "-$pg" 2>/dev/null
  done
  "$BIN/specline" broker restart --dir "$CL" >"$T/heal.log" 2>&1 || cat "$T/heal.log"
}
EXTRA_CLEANUP=cluster_heal

# progress_after T0_STORED SECONDS: waits until more than T0_STORED rows are stored
progress_after() {
  local n0=$1 limit=$2
  wait_for "$limit" bash -c "[ \"\$(sqlite3 -cmd '.timeout 5000' '$T/store.db' 'select count(*) from \"$C\"' 2>/dev/null || echo 0)\" -gt $n0 ]"
}

# workers_started: fails the test at once when a worker exits during its first seconds
# (e.g. a build whose workers cannot take a list of URLs) instead of waiting for the campaign
workers_started() {
  local w
  sleep 3
  for w in "$@"; do
    alive "${WPID[$w]}" && continue
    check "worker $w runs (it exited at start)" false
    logs "$w" | tail -3 | sed 's/^/  /'
    finish
    exit 1
  done
}
