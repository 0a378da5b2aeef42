#!/usr/bin/env bash
# `specline dashboard` reads the management API with the credentials the workers use
# (cli/broker_target.c, shared with `specline top`): a user added on the test broker, its
# "user:password" in a credentials file, the AMQP URL without user info. The queues show
# with the config's credentials_file and with SPECLINE_AMQP_CREDENTIALS_FILE; a file with a
# wrong password shows no queues and says why (so the file, not guest, was used).
. "$(dirname "$0")/../line/lib.sh"
"$BIN/specline" dashboard --help >/dev/null 2>&1 || { echo "SKIP: specline built without the dashboard"; exit 77; }
C="dash-creds-$$"
PORT=$SPECLINE_BROKER_AMQP_PORT
MGMT=$SPECLINE_MGMT_URL
U="dash-creds-$$"
PW="Dash-$$-$RANDOM-pw"
ctl add_user "$U" "$PW" >/dev/null
trap 'ctl delete_user "$U" >/dev/null 2>&1; cleanup' EXIT
ctl set_permissions -p / "$U" '.*' '.*' '.*' >/dev/null
ctl set_user_tags "$U" management >/dev/null
printf '%s:%s\n' "$U" "$PW" >"$T/creds"
printf '%s:%s\n' "$U" "not-$PW" >"$T/wrong"
chmod 600 "$T/creds" "$T/wrong"
base() {
  sed -e "s/^experiment: .*/experiment: $C/" -e "s#^store: .*#store: sqlite:$T/store.db#" \
    "$SRC/examples/oscillator-experiment/config.yaml"
}
base >"$T/plain.yaml"
{ base; echo "credentials_file: $T/creds"; } >"$T/file.yaml"
{ base; echo "credentials_file: $T/wrong"; } >"$T/wrong.yaml"
"$BIN/specline" broker init "$T/plain.yaml" >/dev/null

# dash CONFIG [ENV...]: one snapshot, the AMQP URL without user info, no SPECLINE_MGMT_*
dash() {
  local cfg=$1; shift
  env -u SPECLINE_MGMT_USER -u SPECLINE_MGMT_PASSWORD -u SPECLINE_AMQP_CREDENTIALS_FILE \
    SPECLINE_AMQP_URL="amqp://127.0.0.1:$PORT/" SPECLINE_MGMT_URL="$MGMT" "$@" \
    "$BIN/specline" dashboard "$cfg" --once 2>"$T/dash.err"
}
has_sim_queue() { jq -e --arg q "$C.sim" '.queues != null and ([.queues[] | select(.name == $q)] | length) == 1' >/dev/null; }

dash "$T/file.yaml" >"$T/file.json"
check "the config's credentials_file: the campaign's queues are shown" has_sim_queue <"$T/file.json"
check "  with no management warning" eq "$(jq -r '[.warnings[] | select(test("management"))] | length' "$T/file.json")" 0
dash "$T/plain.yaml" SPECLINE_AMQP_CREDENTIALS_FILE="$T/creds" >"$T/env.json"
check "SPECLINE_AMQP_CREDENTIALS_FILE: the campaign's queues are shown" has_sim_queue <"$T/env.json"
dash "$T/wrong.yaml" >"$T/wrong.json"
check "a file with a wrong password: no queues (the file is what was used, not guest)" \
  eq "$(jq -r '.queues' "$T/wrong.json")" null
check "  and the page is told why" grep -q "management API unavailable" "$T/wrong.json"
check "the password is printed nowhere" bash -c "! grep -qF -- '$PW' '$T/file.json' '$T/env.json' '$T/wrong.json' '$T/dash.err'"
finish
