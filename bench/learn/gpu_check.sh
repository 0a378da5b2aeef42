#!/bin/bash
# The learner's GPU check in one call (issue 17): on a machine with a GPU, from the repo root
# (or a folder laid out like it), with a build made by
#   cmake -S . -B build-gpu -DSPECLINE_CUDA=ON -DSPECLINE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-gpu --target test_gpu_learner test_learn_dp bench_learn
# runs the gpu tests (the binaries directly: a carried build tree's CTestTestfile holds the
# paths of the machine that built it) and bench/learn/run.sh at the issue's shapes (5
# members, hidden 256 x 3, batch 256 and 4096), each under a timeout so a hang still leaves
# the logs. Writes at most 7 files to $OUT (default /tmp/gpu-check): env.log, tests.log,
# bench_table.txt, bench.log, bench_raw.tsv, bench_extra.tsv, summary.txt; prints the summary.
# Usage: bench/learn/gpu_check.sh [BUILD_DIR]   (about 3-5 minutes on an H200)
set -u
build=${1:-build-gpu}
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
t0=$(date +%s)
el() { echo "$(($(date +%s) - t0)) s"; }
export LD_LIBRARY_PATH="/usr/local/cuda/lib64:/usr/local/cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bins="$build/tests/gpu/test_gpu_learner $build/tests/gpu/test_learn_dp $build/bin/bench_learn"

{
  date -u
  echo "pwd $(pwd)"
  uname -a
  nvidia-smi
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv
  nproc
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
  if ldd $bins | grep -q 'not found'; then # cuBLAS/NCCL outside the loader's path: look for them
    extra=$(find / -xdev \( -name 'libnccl.so.2' -o -name 'libcublas.so.13' -o -name 'libcublasLt.so.13' \
      -o -name 'libcudart.so.13' \) -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
    echo "libraries found in: $extra"
    export LD_LIBRARY_PATH="$extra$LD_LIBRARY_PATH"
  fi
  ldd $bins
} > "$out/env.log" 2>&1
echo "env done $(el)"

{
  export SPECLINE_SOURCE_DIR=$(pwd) SPECLINE_BIN_DIR=$build/bin
  for t in test_learn_dp test_gpu_learner; do
    echo "== $t"
    timeout 200 "$build/tests/gpu/$t"
    echo "== $t rc=$?"
  done
} > "$out/tests.log" 2>&1
echo "tests done $(el)"

BENCH_TIMEOUT=${BENCH_TIMEOUT:-90} TORCH_TIMEOUT=${TORCH_TIMEOUT:-150} RAW_OUT="$out/bench_raw.tsv" \
  timeout 520 sh "$here/run.sh" "$build" --hidden 256 --batch 256,4096 --epochs 5 --cpu-seconds 1 \
  > "$out/bench_table.txt" 2> "$out/bench.log"
echo "bench done $(el)"

{ # GPU-only extras (our side only): TF32, split weight-gradient GEMMs off, other hidden widths
  timeout 60 "$build/bin/bench_learn" --hidden 256 --batch 256,4096 --no-cpu --tf32
  echo "# SPECLINE_GPU_SPLITK=1 (weight-gradient GEMMs not split):"
  SPECLINE_GPU_SPLITK=1 timeout 60 "$build/bin/bench_learn" --hidden 256 --batch 256,4096 --no-cpu
  timeout 60 "$build/bin/bench_learn" --hidden 64,1024 --batch 256,4096 --no-cpu
  nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv
} > "$out/bench_extra.tsv" 2>&1
echo "extras done $(el)"

{
  echo "# gpu_check $(date -u +%FT%TZ), $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1)"
  grep -E '^== |^(PASS|FAIL|SKIP)|passed|rel diff|NRMSE|curves|check failed|required|!=|gpu error' "$out/tests.log"
  cat "$out/bench_table.txt"
  grep -v '^# gpu' "$out/bench_extra.tsv" | grep -v '^impl'
  grep -iE 'error|fail|warn|no .* column' "$out/bench.log" | head -20
  echo "total $(el)"
} > "$out/summary.txt" 2>&1
cat "$out/summary.txt"
