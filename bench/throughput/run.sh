#!/usr/bin/env bash
# Throughput benchmark (prints numbers; not a test). On ONE local broker started for the run,
# side by side:
#   a. the specline line: N no-op tasks explore -> simulate -> store (`specline run`), once per
#      simulator mode in MODES (spawn: a process per task; persistent: warm processes,
#      simulator.persistent) and oversubscribe value in OVERSUB (the design default 2, and a
#      deep window)
#   b. Celery 5.2 with Merlin's settings, a no-op task and a task that spawns the same no-op
#      simulator, one prefork worker with concurrency = S
#   c. the raw rabbitmq-c round-trip ceiling (bench-rt), classic/quorum x prefetch 1/S/100
# and worker memory (specline-simulate idle and under load). See bench/README.md.
#
# usage: bench/throughput/run.sh [N]
#        bench/throughput/run.sh --scale [N]   (default 1,000,000) only the persistent line
#          with every worker's RSS sampled each second and the time per 100k tasks
# env:   N=5000 tasks per system; S=4 slots (= Celery concurrency); W=1 simulate workers;
#        MODES="spawn persistent" simulator modes of the line;
#        OVERSUB="2 64" explore's policy.oversubscribe values; RT_N=5000 messages per rt run;
#        BUNDLES="1" simulator.bundle values of the line (e.g. "1 16 32": tasks per <c>.sim
#        message and points per <c>.store message; cpu: each value too);
#        WORKDIR=none: no run directory per task (simulator.workdir; default: one each);
#        PARTS="line celery rt" which parts to run (also: cpu, CPU ms per task of the broker
#        and of each worker, per mode in MODES); SIM_PREFETCH: simulate's --prefetch (cpu); BIN=<build>/bin (default build-bench/bin,
#        else build/bin); KEEP=1 keeps the temp dir.
#        NODES=3: the line again, same run, on a local 3-node cluster (`specline broker start
#        --nodes 3`, quorum queues replicated on all three), its rate printed beside the one
#        node's; the workers get the three URLs (CLUSTER_URLS=one gives them node 1's only,
#        for builds without client failover).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SCALE=""
if [ "${1:-}" = --scale ]; then
  SCALE=1
  shift
  N=${1:-${N:-1000000}}
  PARTS=scale
  OVERSUB=${OVERSUB:-64}
else
  N=${1:-${N:-5000}}
fi
MODES=${MODES:-"spawn persistent"}
S=${S:-4}
W=${W:-1}
OVERSUB=${OVERSUB:-"2 64"}
BUNDLES=${BUNDLES:-1}
RT_N=${RT_N:-5000}
PARTS=${PARTS:-"line celery rt"}
if [ -z "${BIN:-}" ]; then
  BIN=$ROOT/build-bench/bin
  [ -x "$BIN/specline" ] || BIN=$ROOT/build/bin
fi
for b in specline specline-simulate specline-store specline-explore specline-sim-noop bench-rt; do
  [ -x "$BIN/$b" ] || { echo "run.sh: $BIN/$b missing; build first (see bench/README.md)" >&2; exit 2; }
done
PY=/usr/bin/python3
H="$PY $HERE/helpers.py"
export PATH="$BIN:$PATH"

T=$(mktemp -d /tmp/specline-bench.XXXXXX)
chmod 755 "$T"
BR="$T/broker"
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  [ -f "$BR/broker.env" ] && "$BIN/specline" broker stop --dir "$BR" >/dev/null 2>&1
  [ -f "$T/cluster/broker.env" ] && "$BIN/specline" broker stop --dir "$T/cluster" --grace 15 >/dev/null 2>&1
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
now() { date +%s.%N; }
RES="$T/results"   # one row per line: key|system|rate|p50_ms|p99_ms|rss|note
: >"$RES"

echo "== starting a local broker"
timeout 120 "$BIN/specline" broker start --dir "$BR" >"$T/broker.log" 2>&1
# shellcheck disable=SC1091
. "$BR/broker.env"
export SPECLINE_AMQP_URL
echo "   $SPECLINE_AMQP_URL (node $SPECLINE_BROKER_NODE)"
echo "   host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

config() { # config FILE CAMPAIGN OVERSUB DB [MODE [BUNDLE]]
  local persistent=false
  [ "${5:-spawn}" = persistent ] && persistent=true
  cat >"$1" <<YAML
experiment: $2
inputs:
  - {name: a, type: float, value_range: [0.0, 1.0]}
  - {name: b, type: float, value_range: [0.0, 1.0]}
outputs:
  - {name: y, type: float}
simulator: {command: ["specline-sim-noop"], max_steps: 1, persistent: $persistent, bundle: ${6:-1}${WORKDIR:+, workdir: $WORKDIR}}
policy: {initial: sobol, initial_n: $N, acquisition: none, oversubscribe: $3, seed: 1}
budget: {max_sims: $N, wall_s: ${BUDGET_WALL_S:-600}}
workers: {simulate_workers: $W, slots: $S}
store: sqlite:$4
YAML
}

# line_runs TAG LABEL TOOL_URL: the line once per OVERSUB value on the broker of
# SPECLINE_AMQP_URL; TOOL_URL (one node) for the bench's own tap
line_runs() {
  local tag0=$1 label=$2 turl=$3 tag M B O C A rc t0 t1 wall ntap rsim rsto rexp RP SP bl
  for M in $MODES; do
  for B in $BUNDLES; do
  tag=$tag0$M-
  bl=""
  [ "$B" = 1 ] || { tag=$tag0$M-b$B-; bl=", bundle $B"; }
  for O in $OVERSUB; do
    C="bench-tp-$$-$tag$O"
    echo "== specline line$label ($M simulators$bl): $N no-op tasks, $W simulate worker(s) x $S slots, oversubscribe $O (window $((S * W * O)))"
    config "$T/line-$tag$O.yaml" "$C" "$O" "$T/line-$tag$O.db" "$M" "$B"
    $H tap-declare "$turl" "$C" "bench-tap-$C"
    t0=$(now)
    "$BIN/specline" run "$T/line-$tag$O.yaml" --no-progress --no-model >"$T/line-$tag$O.log" 2>&1 &
    RP=$!; PIDS+=("$RP")
    $H rss "$T/rss-line-$tag$O" --kids "$RP" &
    SP=$!; PIDS+=("$SP")
    rc=0; wait "$RP" || rc=$?
    t1=$(now)
    kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true
    wall=$(echo "$t1 - $t0" | bc -l)
    [ $rc -eq 0 ] || { echo "   specline run exited $rc:"; tail -5 "$T/line-$tag$O.log"; }
    ntap=$($H tap-drain "$turl" "bench-tap-$C" "$T/tap-$tag$O")
    A=$($H analyze "$T/line-$tag$O.db" "$C" "$T/tap-$tag$O")
    echo "   $A"
    printf '   wall %.2f s for the whole command; %s tasks seen issued\n' "$wall" "$ntap"
    echo "   max RSS: $(tr '\n' ' ' <"$T/rss-line-$tag$O")"
    get() { echo "$A" | tr ' ' '\n' | awk -F= -v k="$1" '$1==k{print $2}'; }
    rsim=$(awk '$1 ~ /^specline-simul/{print $2}' "$T/rss-line-$tag$O")
    rsto=$(awk '$1 ~ /^specline-store/{print $2}' "$T/rss-line-$tag$O")
    rexp=$(awk '$1 ~ /^specline-explo/{print $2}' "$T/rss-line-$tag$O")
    echo "line-$tag$O|specline line$label, $M$bl, window $((S * W * O))|$(get rate)|$(get lat_p50_ms)|$(get lat_p99_ms)|$rsim|store ${rsto} kB, explore ${rexp} kB; $(get n) stored, wall $(printf %.1f "$wall") s" >>"$RES"
    echo "p2s-$tag$O|  of which produced->stored|-|$(get p2s_p50_ms)|$(get p2s_p99_ms)|-|" >>"$RES"
    [ -n "$tag0" ] || echo "sim-load-$M-$O|specline-simulate under load ($M, o=$O)|-|-|-|$rsim|" >>"$RES"
    rm -f "$T/line-$tag$O.db"*
  done
  done
  done
}

# ---- specline: worker memory at idle -------------------------------------------------
if has line; then
  echo "== specline workers at idle (connected, consuming an empty campaign, 3 s)"
  C="bench-idle-$$"
  config "$T/idle.yaml" "$C" 2 "$T/idle.db"
  "$BIN/specline-simulate" "$T/idle.yaml" --slots "$S" >"$T/idle-sim.log" 2>&1 &
  P1=$!; PIDS+=("$P1")
  "$BIN/specline-store" "$T/idle.yaml" >"$T/idle-store.log" 2>&1 &
  P2=$!; PIDS+=("$P2")
  sleep 3
  IDLE_SIM=$($H rss1 "$P1" | awk '{print $2}')
  IDLE_STORE=$($H rss1 "$P2" | awk '{print $2}')
  kill "$P1" "$P2"; wait "$P1" "$P2" 2>/dev/null || true
  echo "   specline-simulate ${IDLE_SIM} kB, specline-store ${IDLE_STORE} kB"
  echo "idle-sim|specline-simulate idle|-|-|-|$IDLE_SIM|" >>"$RES"
  echo "idle-store|specline-store idle|-|-|-|$IDLE_STORE|" >>"$RES"

  line_runs "" "" "$SPECLINE_AMQP_URL"
  if [ "${NODES:-1}" -gt 1 ]; then
    echo "== starting a local cluster of $NODES nodes"
    timeout 300 "$BIN/specline" broker start --nodes "$NODES" --dir "$T/cluster" --no-management >"$T/cluster.log" 2>&1 ||
      { cat "$T/cluster.log"; exit 1; }
    ONE_URL=$SPECLINE_AMQP_URL
    # shellcheck disable=SC1091
    SPECLINE_AMQP_URL=$(. "$T/cluster/broker.env" && echo "$SPECLINE_AMQP_URL")
    # shellcheck disable=SC1091
    N1_URL=$(. "$T/cluster/broker.env" && echo "$SPECLINE_NODE1_URL")
    [ "${CLUSTER_URLS:-all}" = one ] && SPECLINE_AMQP_URL=$N1_URL
    echo "   workers: $SPECLINE_AMQP_URL"
    line_runs "c$NODES-" " on $NODES nodes" "$N1_URL"
    "$BIN/specline" broker stop --dir "$T/cluster" --grace 15 >/dev/null 2>&1 || true
    SPECLINE_AMQP_URL=$ONE_URL
  fi
fi

# ---- where the CPU goes per task: each worker under /usr/bin/time, the broker's process group
if has cpu; then
  pgcpu() { # CPU seconds (user+system) of every process in group $1
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v g="$1" '$5 == g { t += $14 + $15 } END { printf "%.3f", t / 100 }' 
  }
  O=${OVERSUB##* }
  for M in $MODES; do
  for B in $BUNDLES; do
    C="bench-cpu-$$-$M-$B"
    echo "== CPU per task: $N no-op tasks, $M simulators, bundle $B, $W x $S slots, window $((S * W * O))"
    config "$T/cpu-$M.yaml" "$C" "$O" "$T/cpu-$M.db" "$M" "$B"
    "$BIN/specline" broker init "$T/cpu-$M.yaml" >/dev/null
    TM="/usr/bin/time -f %e_%U_%S -o"
    $TM "$T/time-store" "$BIN/specline-store" "$T/cpu-$M.yaml" >"$T/cpu-store.log" 2>&1 &
    P1=$!; PIDS+=("$P1")
    for _ in $(seq 100); do grep -q 'worker up' "$T/cpu-store.log" && break; sleep 0.1; done
    $TM "$T/time-sim" "$BIN/specline-simulate" "$T/cpu-$M.yaml" --slots "$S" ${SIM_PREFETCH:+--prefetch $SIM_PREFETCH} >"$T/cpu-sim.log" 2>&1 &
    P2=$!; PIDS+=("$P2")
    for _ in $(seq 100); do grep -q 'worker up' "$T/cpu-sim.log" && break; sleep 0.1; done
    b0=$(pgcpu "$SPECLINE_BROKER_PID"); t0=$(now)
    $TM "$T/time-explore" "$BIN/specline-explore" "$T/cpu-$M.yaml" >"$T/cpu-explore.log" 2>&1 || true
    t1=$(now); b1=$(pgcpu "$SPECLINE_BROKER_PID")
    # stop the workers themselves (time would die of the signal without its report)
    kill -TERM $(pgrep -P "$P2") $(pgrep -P "$P1") 2>/dev/null; wait "$P2" "$P1" 2>/dev/null || true
    n=$(sqlite3 "$T/cpu-$M.db" "select count(*) from \"$C\"" 2>/dev/null || echo 0)
    per() { echo "$1" | awk -F_ -v n="$n" '{ printf "%.3f ms (user %.3f + sys %.3f)", 1e3 * ($2 + $3) / n, 1e3 * $2 / n, 1e3 * $3 / n }'; }
    printf '   %s stored in %.2f s (%.0f tasks/s); CPU per task:\n' "$n" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$n / ($t1 - $t0)" | bc -l)"
    printf '     broker (beam, its group)      %.3f ms\n' "$(echo "1000 * ($b1 - $b0) / $n" | bc -l)"
    echo "     specline-explore              $(per "$(cat "$T/time-explore")")"
    echo "     specline-simulate + its sims  $(per "$(cat "$T/time-sim")")"
    echo "     specline-store                $(per "$(cat "$T/time-store")")"
    rm -f "$T/cpu-$M.db"*
  done
  done
fi

# ---- the whole line at scale: persistent no-op, RSS per worker, time per 100k ------------
if has scale; then
  O=${OVERSUB##* }
  C="bench-scale-$$"
  echo "== specline line at scale: $N persistent no-op tasks, $W simulate worker(s) x $S slots, window $((S * W * O)), bundle ${BUNDLES%% *}"
  BUDGET_WALL_S=86400 config "$T/scale.yaml" "$C" "$O" "$T/scale.db" persistent "${BUNDLES%% *}"
  t0=$(now)
  "$BIN/specline" run "$T/scale.yaml" --no-progress --no-model >"$T/scale.log" 2>&1 &
  RP=$!; PIDS+=("$RP")
  $H rss-series "$T/rss-scale" 1 --kids "$RP" &
  SP=$!; PIDS+=("$SP")
  rc=0; wait "$RP" || rc=$?
  t1=$(now)
  kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true
  [ $rc -eq 0 ] || { echo "   specline run exited $rc:"; tail -5 "$T/scale.log"; }
  printf '   wall %.1f s for the whole command\n' "$(echo "$t1 - $t0" | bc -l)"
  $H per100k "$T/scale.db" "$C" 100000
  $H rss-summary "$T/rss-scale"
  exit 0
fi

# ---- Celery with Merlin's settings ---------------------------------------------------
if has celery; then
  CW=$(( S * W * ${OVERSUB##* } ))   # the same in-flight window as the deepest line run
  export BENCH_CELERY_BROKER="pyamqp://guest:guest@127.0.0.1:${SPECLINE_BROKER_AMQP_PORT}//"
  export BENCH_CELERY_QUEUE="bench-celery-$$"
  export BENCH_NOOP_SIM="$BIN/specline-sim-noop"
  export C_FORCE_ROOT=1
  for kind in noop spawn; do
    echo "== Celery 5.2 (Merlin's settings: acks_late, prefetch x1, pickle, durable queue, rpc:// results), $kind, concurrency $S, window $CW"
    t0=$(now)
    (cd "$HERE" && exec $PY -m celery -A celery_tasks worker -c "$S" -P prefork --without-gossip --without-mingle \
        --without-heartbeat -l warning) >"$T/celery-$kind.log" 2>&1 &
    CP=$!; PIDS+=("$CP")
    $H rss "$T/rss-celery-$kind" --tree "$CP" &
    SP=$!; PIDS+=("$SP")
    out=$(cd "$HERE" && timeout 600 $PY celery_bench.py "$kind" "$N" "$CW" 2>"$T/celery-client-$kind.log") || {
      echo "   client failed:"; tail -5 "$T/celery-client-$kind.log"; }
    t1=$(now)
    kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true
    kill "$CP" 2>/dev/null || true; wait "$CP" 2>/dev/null || true
    echo "   $out"
    echo "   max RSS: $(tr '\n' ' ' <"$T/rss-celery-$kind")"
    g() { echo "$out" | tr ' ' '\n' | awk -F= -v k="$1" '$1==k{print $2}'; }
    tree=$(awk '$1=="tree"{print $2}' "$T/rss-celery-$kind")
    echo "celery-$kind|Celery, $kind task|$(g rate)|$(g p50_ms)|$(g p99_ms)|$tree|main + $S pool children (sum of RSS); wall $(printf %.1f "$(echo "$t1 - $t0" | bc -l)") s incl. start" >>"$RES"
  done
fi

# ---- the raw broker ceiling ----------------------------------------------------------
if has rt; then
  for q in classic quorum; do
    for p in 1 "$S" 100; do
      echo "== rabbitmq-c round trip: $q queue, prefetch $p, $RT_N persistent messages, confirms, manual acks"
      out=$(timeout 300 "$BIN/bench-rt" --type "$q" --prefetch "$p" --n "$RT_N" --window 1000)
      lat=$(timeout 120 "$BIN/bench-rt" --type "$q" --prefetch "$p" --n 300 --window 1)
      echo "   $out"
      echo "   unloaded (window 1): $lat"
      g() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1==k{print $2}'; }
      echo "rt-$q-$p|rabbitmq-c raw, $q, prefetch $p|$(g "$out" rate)|$(g "$lat" p50_ms)|$(g "$lat" p99_ms)|-|rate at window 1000; latency at window 1" >>"$RES"
    done
  done
fi

echo
$H report "$RES" "$S"
