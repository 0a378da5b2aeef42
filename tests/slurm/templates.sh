#!/usr/bin/env bash
# The sbatch templates without Slurm: they refuse a password in SPECLINE_AMQP_URL, a missing
# URL, config or credentials file, before starting anything; they warn with SIGURG (see
# simulate-pool.sbatch) and pass shellcheck when it is installed.
set -uo pipefail
SRC=${SPECLINE_SOURCE_DIR:?}
D=$SRC/deploy/slurm
T=$(mktemp -d /tmp/specline-slurm-tpl.XXXXXX)
trap 'rm -rf "$T"' EXIT
FAILS=0
CHECKS=0
check() {
  local what=$1
  shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; FAILS=$((FAILS + 1)); fi
}
# refuses TEMPLATE PATTERN ENV... : the template exits 2 saying PATTERN
refuses() {
  local tpl=$1 pat=$2 out rc
  shift 2
  out=$(env -i PATH="$T/bin:/usr/bin:/bin" SLURM_JOB_ID=1 "$@" bash "$D/$tpl" "$T/config.yaml" 2>&1)
  rc=$?
  if [ $rc -ne 2 ] || ! grep -q "$pat" <<<"$out"; then
    echo "  status $rc: $out"
    return 1
  fi
}

mkdir -p "$T/bin"
for w in specline-simulate specline-store specline-explore specline-learn; do
  printf '#!/bin/sh\necho "%s must not run here" >&2; exit 99\n' "$w" >"$T/bin/$w"
  chmod +x "$T/bin/$w"
done
echo "experiment: x" >"$T/config.yaml"
echo "guest:guest" >"$T/creds"

for tpl in simulate-pool.sbatch services.sbatch learner.sbatch; do
  check "$tpl: refuses a password in the url" refuses "$tpl" "carries a password" \
    SPECLINE_AMQP_URL=amqp://u:secret@broker.example.org/
  check "$tpl: refuses a missing url" refuses "$tpl" "SPECLINE_AMQP_URL is not set"
  check "$tpl: refuses an unreadable credentials file" refuses "$tpl" "cannot read SPECLINE_AMQP_CREDENTIALS_FILE" \
    SPECLINE_AMQP_URL=amqp://broker.example.org/ SPECLINE_AMQP_CREDENTIALS_FILE="$T/none"
  check "$tpl: refuses a missing config" bash -c "out=\$(env -i PATH=/usr/bin:/bin bash '$D/$tpl' '$T/none.yaml' 2>&1); [ \$? -eq 2 ] && grep -q 'cannot read config' <<<\"\$out\""
  check "$tpl: warns with SIGURG before the walltime" grep -Eq '^#SBATCH --signal=URG@[0-9]+$' "$D/$tpl"
  check "$tpl: no password on any command line" bash -c "! grep -nE 'amqps?://[^ ]*:[^ ]*@' '$D/$tpl' | grep -v '^[0-9]*:#'"
  if command -v shellcheck >/dev/null; then
    check "$tpl: shellcheck" shellcheck -s bash "$D/$tpl"
  fi
done
if command -v shellcheck >/dev/null; then
  check "test scripts: shellcheck" shellcheck -x -s bash -P "$SRC/tests/slurm" "$SRC/tests/slurm/cluster.sh" "$SRC/tests/slurm/pool.sh" "$0"
fi
echo "$((CHECKS - FAILS)) passed, $FAILS failed"
[ $FAILS -eq 0 ]
