#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan, coverage-instrumented libspecline)
# into build-fuzz/ and runs each for SECONDS (default 20) on its corpus: new inputs go to
# build-fuzz/fuzz-corpus/<x>/, the committed seeds tests/fuzz/corpus/<x>/ and the golden
# vectors tests/proto/<kind>/ are read. Exits non-zero if any target crashes; each crasher
# is copied to tests/proto/<kind>/crash-<hash>/input, a golden vector that fails until its
# expected or error file is written (and the bug fixed).
#
# usage: tests/fuzz/run.sh [SECONDS] [TARGET...]     e.g. tests/fuzz/run.sh 30 sim_task
# env:   SPECLINE_FUZZ_BUILD (default <repo>/build-fuzz), FUZZ_JOBS (make -j, default 2)
set -eu

secs=${1:-20}
[ $# -gt 0 ] && shift
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${SPECLINE_FUZZ_BUILD:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-2}

if [ $# -gt 0 ]; then
  keys="$*"
else
  keys=$(cd "$root/tests/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
fi

CC=clang cmake -S "$root" -B "$build" -DSPECLINE_FUZZ=ON -DSPECLINE_SANITIZE=address,undefined \
  -DSPECLINE_CUDA=OFF -DSPECLINE_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS="-fno-sanitize-recover=undefined" >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
targets=""
for k in $keys; do targets="$targets fuzz_$k"; done
make -C "$build" -j"$jobs" $targets >"$build.make.log" 2>&1 || { tail -40 "$build.make.log"; exit 1; }

failed=0
summary=""
for k in $keys; do
  kind=$(echo "$k" | sed 's/_/./')
  work="$build/fuzz-corpus/$k"
  art="$build/fuzz-artifacts/$k"
  mkdir -p "$work" "$art"
  dirs="$work $root/tests/fuzz/corpus/$k"
  [ -d "$root/tests/proto/$kind" ] && dirs="$dirs $root/tests/proto/$kind"
  dict=""
  [ "$k" != config ] && dict="-dict=$root/tests/fuzz/json.dict"
  log="$build/fuzz-$k.log"
  echo "== fuzz_$k for ${secs}s"
  if ASAN_OPTIONS=detect_leaks=1 "$build/tests/fuzz/fuzz_$k" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" $dict $dirs >"$log" 2>&1; then
    status=ok
  else
    status=CRASH
    failed=1
    tail -30 "$log"
    for a in "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*; do
      [ -f "$a" ] || continue
      h=$(sha1sum "$a" | cut -c1-12)
      dest="$root/tests/proto/$kind/crash-$h"
      if [ -d "$root/tests/proto/$kind" ] && [ ! -d "$dest" ]; then
        mkdir -p "$dest" && cp "$a" "$dest/input"
        echo "   crasher saved as golden vector $dest (write its expected or error file)"
      fi
    done
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | sed 's/ft: //')
  corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | sed 's/corp: //')
  line=$(printf '%-20s %-5s execs=%s cov=%s ft=%s corpus=%s' "$k" "$status" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
  echo "   $line"
  summary="$summary$line
"
done
printf '\n%s' "$summary"
exit $failed
