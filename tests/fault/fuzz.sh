#!/usr/bin/env bash
# The libFuzzer targets with a small budget: tests/fuzz/run.sh (every message decoder and
# the config loader, built with clang under ASan + UBSan into build-fuzz/) and the
# simulator-line parser's target tests/fault/fuzz_simline.c, FAULT_FUZZ_SECONDS each
# (default 10). SKIP (77) without clang. Fails when any target crashes, leaks, times out
# or runs out of memory (run.sh keeps each crasher as a golden vector).
set -uo pipefail
SRC=${SPECLINE_SOURCE_DIR:?}
SECS=${FAULT_FUZZ_SECONDS:-10}
if ! command -v clang >/dev/null; then
  echo "SKIP: clang is not installed (the libFuzzer targets need it)"
  exit 77
fi
export SPECLINE_FUZZ_BUILD=${SPECLINE_FUZZ_BUILD:-$SRC/build-fuzz}
build=$SPECLINE_FUZZ_BUILD
rc=0
sh "$SRC/tests/fuzz/run.sh" "$SECS" || rc=1

echo "== fuzz_simline for ${SECS}s"
if ! make -C "$build" -j"${FUZZ_JOBS:-2}" fuzz_simline >"$build/simline.make.log" 2>&1; then
  tail -30 "$build/simline.make.log"
  exit 1
fi
work=$build/fuzz-corpus/simline
art=$build/fuzz-artifacts/simline
mkdir -p "$work" "$art"
log=$build/fuzz-simline.log
if ASAN_OPTIONS=detect_leaks=1 "$build/tests/fault/fuzz_simline" -max_total_time="$SECS" -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" -dict="$SRC/tests/fuzz/json.dict" \
  "$work" "$SRC/tests/fault/corpus/simline" >"$log" 2>&1; then
  status=ok
else
  status=CRASH
  rc=1
  tail -30 "$log"
  for a in "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*; do
    [ -f "$a" ] || continue
    h=$(sha1sum "$a" | cut -c1-12)
    dest=$SRC/tests/fault/corpus/simline/crash-$h
    [ -f "$dest" ] || { cp "$a" "$dest" && echo "   crasher saved as $dest (replayed by fuzz_replay/simline)"; }
  done
fi
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
printf '   %-20s %-5s execs=%s cov=%s\n' simline "$status" "${runs:-?}" "${cov:-?}"
exit $rc
