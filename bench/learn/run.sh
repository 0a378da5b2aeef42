#!/bin/sh
# Learner speed, side by side: bench_learn (our CPU and GPU paths) and torch_baseline.py
# (PyTorch eager and torch.compile), same shapes, one table with the ratios.
# Usage: bench/learn/run.sh [BUILD_DIR] [extra bench_learn/torch_baseline options...]
#   BUILD_DIR defaults to build-gpu; options such as --hidden 256 --batch 256,4096 go to both.
# A missing GPU or PyTorch leaves its columns as "-". Numbers, never pass/fail.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build-gpu}
[ $# -gt 0 ] && shift
bin="$build/bin/bench_learn"
[ -x "$bin" ] || { echo "run.sh: no $bin (build target bench_learn first)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" "$@" > "$tmp/ours.tsv"
py=${PYTHON:-python3}
"$py" "$here/torch_baseline.py" "$@" > "$tmp/torch.tsv" || echo "run.sh: no PyTorch column" >&2
grep -h '^#' "$tmp/ours.tsv" "$tmp/torch.tsv" || true
cat "$tmp/ours.tsv" "$tmp/torch.tsv" | grep -v '^#' | grep -v '^impl' | awk -F '\t' '
  { k = $2 "\t" $3; if (!(k in seen)) { seen[k] = 1; keys[n++] = k } v[$1, k] = $4; if ($1 == "gpu") sh[k] = $5 }
  function val(i, k) { return ((i, k) in v) ? v[i, k] : "-" }
  function ratio(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2f", a / b) }
  END {
    printf "%-6s %-6s %10s %10s %10s %10s %6s %8s %8s %8s\n", "hidden", "batch", "cpu", "gpu", "t.eager", "t.compile",
      "gemm%", "gpu/cpu", "gpu/eagr", "gpu/comp"
    for (i = 0; i < n; i++) {
      k = keys[i]; split(k, hb, "\t")
      c = val("cpu", k); g = val("gpu", k); e = val("torch-eager", k); t = val("torch-compile", k)
      s = (k in sh && sh[k] != "nan") ? sprintf("%.0f", 100 * sh[k]) : "-"
      printf "%-6s %-6s %10s %10s %10s %10s %6s %8s %8s %8s\n", hb[1], hb[2], c, g, e, t, s, ratio(g, c), ratio(g, e), ratio(g, t)
    }
  }'
