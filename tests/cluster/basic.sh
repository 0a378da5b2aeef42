#!/usr/bin/env bash
# The local cluster itself, without workers (passes without client failover): three nodes
# running in one cluster, broker.env with the list of URLs, ctl on one node and on all,
# quorum queues created with the asked group size (and kept when declared again with
# another), dead-lettering still at-least-once, leaders spread over the nodes, `broker
# status` with leaders and members and its warning below quorum, a node stopped and
# restarted.
. "$(dirname "$0")/lib.sh"
S="$BIN/specline"

"$S" broker status --dir "$CL" >"$T/nodes.out" 2>&1
check "status --dir: 3 nodes running (exit $?)" grep -q "3 of 3 nodes running" "$T/nodes.out"
check "broker.env: SPECLINE_AMQP_URL lists 3 URLs" eq "$(echo "$SPECLINE_AMQP_URL" | tr ',' '\n' | grep -c '^amqp://')" 3
check "broker.env: per-node URLs" test -n "$(node_url 3)"
running=$("$S" broker ctl --dir "$CL" --node 2 -q cluster_status --formatter json |
  /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))')
check "node 2's cluster_status: 3 running nodes ($running)" eq "$running" 3
check "ctl without --node runs on every node" eq "$("$S" broker ctl --dir "$CL" -q list_users | grep -c '^== node')" 3

# campaign A through node 2 with group size 2; campaign B through node 1, broker's default
osc_config "clA-$$" 10 0.01 10 1
SPECLINE_AMQP_URL=$(node_url 2) "$S" broker init "$T/config.yaml" --quorum-group-size 2 >"$T/initA.out" 2>&1
check "init A with --quorum-group-size 2 (exit $?)" grep -q declared "$T/initA.out"
cp "$T/config.yaml" "$T/configA.yaml"
osc_config "clB-$$" 10 0.01 10 1
SPECLINE_AMQP_URL=$(node_url 1) "$S" broker init "$T/config.yaml" >"$T/initB.out" 2>&1
check "init B with the broker's default" grep -q declared "$T/initB.out"
members() { cctl -q list_queues name members | awk -v q="$1" '$1==q' | grep -o '@' | wc -l; }
check "A.sim has 2 members" eq "$(members "clA-$$.sim")" 2
check "B.sim has 3 members (min(3, nodes))" eq "$(members "clB-$$.sim")" 3
SPECLINE_AMQP_URL=$(node_url 3) "$S" broker init "$T/configA.yaml" >"$T/initA2.out" 2>&1
check "init A again without the size keeps the queue (exit $?)" grep -q declared "$T/initA2.out"
SPECLINE_AMQP_URL=$(node_url 3) "$S" broker init "$T/config.yaml" --quorum-group-size 3 >"$T/initB2.out" 2>&1
check "init B again with size 3 keeps the queue" grep -q declared "$T/initB2.out"
check "A.sim still has 2 members" eq "$(members "clA-$$.sim")" 2
args=$(cctl -q list_queues name arguments | awk -v q="clB-$$.sim" '$1==q')
check "B.sim dead-letters at-least-once with reject-publish" \
  bash -c "grep -q 'x-dead-letter-strategy.*at-least-once' <<<'$args' && grep -q 'x-overflow.*reject-publish' <<<'$args'"
leaders=$(for q in sim store dead; do leader_of "clB-$$.$q"; done | sort -u | wc -l)
check "B's quorum queues are led by $leaders different nodes (balanced)" test "$leaders" -ge 2

"$S" broker status "$T/config.yaml" --broker-dir "$CL" >"$T/statusB.out" 2>"$T/statusB.err"
cat "$T/statusB.out"
check "status shows B.sim's leader" grep -q "clB-$$.sim .*$(leader_of "clB-$$.sim").* 3/3" "$T/statusB.out"
check "status lists B.sim's members" grep -q "clB-$$.sim members: .*@.*@.*@" "$T/statusB.out"
check "status warns about nothing" test ! -s "$T/statusB.err"

# stop a node that holds a member of A.sim (2 members): A.sim below quorum, B.sim not
victim=$(node_of "$(cctl -q list_queues name members | awk -v q="clA-$$.sim" '$1==q' | grep -o 'specline-n[0-9]*-[0-9]*@localhost' | tail -1)")
"$S" broker stop --dir "$CL" --node "$victim" >"$T/stop.out" 2>&1
check "stop --node $victim" grep -q stopped "$T/stop.out"
"$S" broker status --dir "$CL" >"$T/nodes2.out" 2>&1
check "status --dir: node $victim stopped" grep -q "node $victim .*stopped" "$T/nodes2.out"
"$S" broker status "$T/configA.yaml" --broker-dir "$CL" >"$T/statusA.out" 2>"$T/statusA.err"
cat "$T/statusA.out" "$T/statusA.err"
check "status warns that A.sim is below quorum" grep -q "clA-$$.sim' has 1 of 2 members online" "$T/statusA.err"
"$S" broker status "$T/config.yaml" --broker-dir "$CL" >"$T/statusB2.out" 2>"$T/statusB2.err"
check "B.sim 2/3 online and no warning for B" \
  bash -c "grep -q 'clB-$$.sim .* 2/3' '$T/statusB2.out' && ! grep -q clB '$T/statusB2.err'"
t0=$SECONDS
"$S" broker restart --dir "$CL" --node "$victim" >"$T/restart.out" 2>&1
check "restart --node $victim ($((SECONDS - t0)) s)" grep -q running "$T/restart.out"
check "B.sim has its 3 members online again" wait_for 30 all_online "clB-$$.sim"
for q in sim store dead progress predict; do cctl -q delete_queue "clA-$$.$q" >/dev/null 2>&1; cctl -q delete_queue "clB-$$.$q" >/dev/null 2>&1; done
finish
