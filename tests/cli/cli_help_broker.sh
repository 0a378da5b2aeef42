#!/usr/bin/env bash
# The top-level --help names every subcommand (sim list, broker ctl), and every command
# chooses the broker in one order: --broker-dir, else SPECLINE_AMQP_URL, else the config's
# broker: (docs/broker.md). No broker is started: each choice is read from the error that
# names it (a missing broker.env, or the refused port of the URL chosen).
set -uo pipefail
BIN=${SPECLINE_BIN_DIR:?}/specline
T=$(mktemp -d /tmp/specline-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
check() { # name, output, expected substring
  if grep -qF -- "$3" <<<"$2"; then echo "ok   $1"; pass=$((pass + 1)); else
    echo "FAIL $1: want '$3' in: $(head -c 400 <<<"$2")"; fail=$((fail + 1)); fi
}

help=$("$BIN" --help)
check "--help lists sim list" "$help" "sim list CONFIG"
check "--help lists sim terminate" "$help" "sim terminate CONFIG SAMPLE_ID"
check "--help lists broker ctl" "$help" "broker ctl --dir DIR"

cat >"$T/c.yaml" <<YAML
experiment: order
inputs:
  - {name: a, value_range: [0, 1]}
outputs:
  - {name: y}
simulator: {command: ["true"]}
budget: {max_sims: 5}
store: sqlite:$T/s.db
broker: amqp://127.0.0.1:2/
YAML
grep -v '^broker:' "$T/c.yaml" >"$T/nobroker.yaml"
printf 'a,y\n0.5,1\n' >"$T/shots.csv"

for cmd in "broker init" "broker status" "top --once --interval 0.2" "shot submit --timeout 1 SHOTS" "sim list --wait 0"; do
  name=${cmd%% -*}
  run() { # config, extra args...
    local cfg=$1
    shift
    # shellcheck disable=SC2086,SC2046
    timeout 60 "$BIN" ${cmd/SHOTS/} "$cfg" $([[ $cmd == *SHOTS* ]] && echo "$T/shots.csv") "$@" 2>&1
  }
  out=$(SPECLINE_AMQP_URL=amqp://127.0.0.1:1/ run "$T/c.yaml" --broker-dir "$T/nodir")
  check "$name: --broker-dir wins over SPECLINE_AMQP_URL and broker:" "$out" "$T/nodir/broker.env"
  out=$(SPECLINE_AMQP_URL=amqp://127.0.0.1:1/ run "$T/c.yaml")
  check "$name: SPECLINE_AMQP_URL wins over broker:" "$out" "127.0.0.1:1/"
  out=$(env -u SPECLINE_AMQP_URL bash -c "$(declare -f run); cmd='$cmd' T='$T' BIN='$BIN' run '$T/c.yaml'")
  check "$name: the config's broker: last" "$out" "127.0.0.1:2/"
  out=$(env -u SPECLINE_AMQP_URL bash -c "$(declare -f run); cmd='$cmd' T='$T' BIN='$BIN' run '$T/nobroker.yaml'")
  check "$name: none says all three" "$out" "no broker: use --broker-dir DIR, set SPECLINE_AMQP_URL, or set"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
