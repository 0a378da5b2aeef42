#!/usr/bin/env bash
# Security rules of DESIGN.md §7:
#  1. the guest user is refused for a non-loopback broker URL, with a clear error and no
#     connection attempt (checked with strace when it is installed, else by the time taken:
#     10.0.0.1 is not reachable, an attempt would take the connect timeout);
#  2. credentials never appear in argv (/proc/<pid>/cmdline), `ps`, or the logs, whether
#     they come in SPECLINE_AMQP_URL or in SPECLINE_AMQP_CREDENTIALS_FILE;
#  3. amqps:// with a CA file (SPECLINE_AMQP_CA_FILE) works against a local broker whose
#     certificate the test makes with openssl (a campaign completes over TLS, the broker
#     lists the connections as TLS), and without that CA the worker refuses the broker.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || {
  echo "SKIP: openssl not installed"
  exit 77
}
C="fault-sec-$$"
cat >"$T/config.yaml" <<YAML
experiment: $C
inputs:
  - {name: a, type: float, value_range: [0.0, 1.0]}
outputs:
  - {name: y, type: float}
simulator: {command: ["specline-sim-faulty", "--mode", "7"], max_steps: 10, step_delay: 0.1}
policy: {initial: sobol, initial_n: 4, acquisition: none, oversubscribe: 2, seed: 3}
budget: {max_sims: 30, wall_s: 120}
workers: {simulate_workers: 1, slots: 2}
store: sqlite:$T/store.db
YAML

# 1. guest refused for a non-loopback broker
for url in "amqp://guest:guest@10.0.0.1/" "amqp://10.0.0.1:5672/"; do
  for w in store simulate explore; do
    t0=$(date +%s%N)
    if command -v strace >/dev/null; then
      SPECLINE_AMQP_URL=$url timeout 20 strace -f -qq -e trace=connect -o "$T/strace-$w.txt" \
        "$BIN/specline-$w" "$T/config.yaml" >"$T/guest-$w.out" 2>&1
      rc=$?
      attempts=$(grep -c '10\.0\.0\.1' "$T/strace-$w.txt")
    else
      SPECLINE_AMQP_URL=$url timeout 20 "$BIN/specline-$w" "$T/config.yaml" >"$T/guest-$w.out" 2>&1
      rc=$?
      attempts="(no strace)"
    fi
    ms=$((($(date +%s%N) - t0) / 1000000))
    echo "  $w, $url: status $rc after ${ms} ms, connects to 10.0.0.1: $attempts; $(head -c 200 "$T/guest-$w.out")"
    check "$w refuses guest for $url (non-zero exit)" test "$rc" -ne 0 -a "$rc" -ne 124
    check "$w says why (refusing user 'guest')" grep -q "refusing user 'guest'" "$T/guest-$w.out"
    if [ "$attempts" != "(no strace)" ]; then
      check "$w made no connection attempt" eq "$attempts" 0
    else
      check "$w made no connection attempt (answered in ${ms} ms < 3000)" test "$ms" -lt 3000
    fi
  done
done

log "guest checks done"
# 2 and 3: a TLS broker, a user with a password, workers over amqps
mkdir -p "$T/pki"
(
  cd "$T/pki" || exit 1
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=specline fault CA" &&
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" &&
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext &&
    openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other-ca.pem -days 2 -subj "/CN=another CA"
) >"$T/openssl.log" 2>&1 || {
  cat "$T/openssl.log"
  echo "FAIL cannot make the certificates"
  exit 1
}
chmod 644 "$T/pki"/*
own_broker --no-management --tls "$T/pki/server.pem" "$T/pki/server.key" "$T/pki/ca.pem"
# shellcheck disable=SC1091
AMQPS=$(. "$BROKER_DIR/broker.env" && echo "$SPECLINE_AMQPS_URL")
PORT=$(echo "$AMQPS" | sed 's|.*:\([0-9]*\)/.*|\1|')
echo "  TLS listener: amqps://localhost:$PORT/"
PASS="Fault-$$-$RANDOM-s3cr3t"
USER_="fault-user-$$"
ctl add_user "$USER_" "$PASS" >/dev/null 2>&1 && ctl set_permissions -p / "$USER_" ".*" ".*" ".*" >/dev/null 2>&1 ||
  echo "  (cannot add the user)"
printf '%s:%s\n' "$USER_" "$PASS" >"$T/creds"
chmod 600 "$T/creds"
log "TLS broker up, user added"
ledger_tap "$C" # over the plain loopback listener, as guest

SECURL="amqps://$USER_:$PASS@localhost:$PORT/"
# store and simulate: credentials in the URL (environment); explore: in a credentials file
SPECLINE_AMQP_URL=$SECURL SPECLINE_AMQP_CA_FILE=$T/pki/ca.pem start store "$BIN/specline-store" "$T/config.yaml"
SPECLINE_AMQP_URL=$SECURL SPECLINE_AMQP_CA_FILE=$T/pki/ca.pem start sim "$BIN/specline-simulate" "$T/config.yaml" --slots 2
SPECLINE_AMQP_URL="amqps://localhost:$PORT/" SPECLINE_AMQP_CREDENTIALS_FILE=$T/creds SPECLINE_AMQP_CA_FILE=$T/pki/ca.pem \
  start explore "$BIN/specline-explore" "$T/config.yaml" --lease-s 10
connected() { grep -q "connected to" "$T/explore.1.log" && grep -q "connected to" "$T/sim.1.log" && grep -q "connected to" "$T/store.1.log"; }
check "the workers connect over amqps with the CA file" wait_for 30 connected
sleep 1
leaks=0
for w in store sim explore; do
  p=${WPID[$w]}
  if alive "$p" && tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF -- "$PASS"; then
    echo "  the password is in the argv of $w"
    leaks=$((leaks + 1))
  fi
done
check "no password in any worker's argv (/proc/PID/cmdline)" eq "$leaks" 0
check "no password in ps" eq "$(ps -eo args | grep -F -- "$PASS" | grep -vc 'grep')" 0
tls_conns=$(ctl -q list_connections user ssl 2>/dev/null | awk -v u="$USER_" '$1 == u && $2 == "true"' | wc -l)
check "the broker lists the workers' connections as TLS ($tls_conns >= 3)" test "$tls_conns" -ge 3

wait_explore 90
kill "${WPID[sim]}" "${WPID[store]}" 2>/dev/null
wait "${WPID[sim]}" "${WPID[store]}" 2>/dev/null
check "a campaign completes over TLS (explore exit 0)" eq "$explore_done" 0
log "campaign over TLS done"

# without the CA (system trust store) or with another CA, the broker is refused
for ca in "" "$T/pki/other-ca.pem"; do
  SPECLINE_AMQP_URL=$SECURL SPECLINE_AMQP_CA_FILE=$ca timeout 5 "$BIN/specline-store" "$T/config.yaml" >"$T/noca.out" 2>&1
  rc=$?
  echo "  CA '${ca:-system}': status $rc; $(grep -m1 'cannot connect' "$T/noca.out" | sed 's/.*cannot connect/cannot connect/' | head -c 220)"
  check "without the broker's CA (${ca:-system trust}) the worker does not connect" \
    test "$(grep -c 'connected to' "$T/noca.out")" -eq 0 -a "$rc" -ne 0
  cat "$T/noca.out" >>"$T/noca.log"
done
check "no password in any log" eq "$(cat "$T"/*.log "$T"/*.out | grep -cF -- "$PASS")" 0
echo "  user name in logs (allowed, redacted URL): $(cat "$T"/*.log | grep -m1 -o "amqps://[^ ]*" | head -1)"

ledger_report "$C"
ledger_checks
finish
