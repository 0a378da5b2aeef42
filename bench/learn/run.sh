#!/bin/sh
# Learner speed, side by side: bench_learn (our CPU and GPU paths) and torch_baseline.py
# (PyTorch eager, torch.compile and torch.compile mode="reduce-overhead"), same shapes, one
# table with the ratios.
# Usage: bench/learn/run.sh [BUILD_DIR] [extra bench_learn/torch_baseline options...]
#   BUILD_DIR defaults to build-gpu; options such as --hidden 256 --batch 256,4096 go to both.
#   TORCH_IMPLS (default torch-eager,torch-compile,torch-compile-ro) picks the PyTorch runs,
#   each its own process under `timeout ${TORCH_TIMEOUT:-300}`; BENCH_TIMEOUT (default 300)
#   bounds bench_learn. RAW_OUT=FILE keeps every raw row there.
# A missing GPU or PyTorch leaves its columns as "-". Numbers, never pass/fail.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build-gpu}
[ $# -gt 0 ] && shift
bin="$build/bin/bench_learn"
[ -x "$bin" ] || { echo "run.sh: no $bin (build target bench_learn first)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
timeout "${BENCH_TIMEOUT:-300}" "$bin" "$@" > "$tmp/ours.tsv" || echo "run.sh: bench_learn failed ($?)" >&2
py=${PYTHON:-python3}
for impl in $(echo "${TORCH_IMPLS:-torch-eager,torch-compile,torch-compile-ro}" | tr ',' ' '); do
  PYTHONUNBUFFERED=1 timeout "${TORCH_TIMEOUT:-300}" "$py" "$here/torch_baseline.py" --impl "$impl" "$@" \
    > "$tmp/$impl.tsv" || echo "run.sh: no $impl column ($?)" >&2
done
cat "$tmp"/*.tsv > "$tmp/all"
[ -n "${RAW_OUT:-}" ] && cp "$tmp/all" "$RAW_OUT"
grep -h '^#' "$tmp/all" | sort -u || true
grep -v '^#' "$tmp/all" | grep -v '^impl' | awk -F '\t' '
  { k = $2 "\t" $3; if (!(k in seen)) { seen[k] = 1; keys[n++] = k } v[$1, k] = $4; if ($1 == "gpu") sh[k] = $5 }
  function val(i, k) { return ((i, k) in v) ? v[i, k] : "-" }
  function ratio(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2f", a / b) }
  END {
    printf "%-6s %-6s %10s %10s %10s %10s %10s %6s %8s %8s %8s %8s\n", "hidden", "batch", "cpu", "gpu", "t.eager",
      "t.compile", "t.comp-ro", "gemm%", "gpu/cpu", "gpu/eagr", "gpu/comp", "gpu/c-ro"
    for (i = 0; i < n; i++) {
      k = keys[i]; split(k, hb, "\t")
      c = val("cpu", k); g = val("gpu", k); e = val("torch-eager", k); t = val("torch-compile", k)
      r = val("torch-compile-ro", k)
      s = (k in sh && sh[k] != "nan") ? sprintf("%.0f", 100 * sh[k]) : "-"
      printf "%-6s %-6s %10s %10s %10s %10s %10s %6s %8s %8s %8s %8s\n", hb[1], hb[2], c, g, e, t, r, s,
        ratio(g, c), ratio(g, e), ratio(g, t), ratio(g, r)
    }
  }'
