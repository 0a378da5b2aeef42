#!/usr/bin/env bash
# The dashboard against a live campaign, in headless Chromium: `specline run` on the
# oscillator-experiment example (slowed a little so it is still running while the page is
# driven) with the experiment's shots submitted, `specline dashboard` on a free loopback
# port, then drive.js (the page loads, snapshots stream, a slider moves the prediction and
# its band, both models answer, progress advances, predicted vs actual has points, the view
# of a stopped run shows the tail it was stopped on, a phone-sized screen fits). The
# speculation is looser than the example's (confidence 0.15, half the stops audited) so
# that runs are stopped within the test. Then the
# token rules: no non-loopback bind without a token, 401 without it, and no text of a
# request reaches anything but a strict number parser. Screenshots in SPECLINE_BROWSER_OUT.
. "$(dirname "$0")/../line/lib.sh"
OUT=${SPECLINE_BROWSER_OUT:-$T}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "SKIP: $CHROMIUM missing (scripts/setup.sh installs chromium)"; exit 77; }
command -v node >/dev/null || { echo "SKIP: node missing"; exit 77; }
"$BIN/specline" dashboard --help >/dev/null 2>&1 || { echo "SKIP: specline built without the dashboard (libmicrohttpd)"; exit 77; }
C="browser-dash-$$"
EX="$SRC/examples/oscillator-experiment"
sed -e "s/^experiment: .*/experiment: $C/" -e "s#^store: .*#store: sqlite:$T/store.db#" \
    -e "s/^budget: .*/budget: {max_sims: 400, wall_s: 280}/" \
    -e 's/^simulator: .*/simulator: {command: ["specline-sim-oscillator"], max_steps: 400, step_delay: 0.005}/' \
    -e "s/^learn: .*/learn: {ensemble: 3, hidden: 32, layers: 2, epochs: 200, batch: 32, lr: 0.003, retrain_every: 8}/" \
    -e "s/^  speculative: .*/  speculative: {enabled: true, min_fraction: 0.25, confidence: 0.15, surprise_p: 0.01, audit_fraction: 0.5}/" \
    "$EX/config.yaml" >"$T/config.yaml"

start run timeout 280 "$BIN/specline" run "$T/config.yaml" --no-progress
start dash "$BIN/specline" dashboard "$T/config.yaml" --listen 127.0.0.1:0 --interval 1 \
  --broker-dir "$SPECLINE_TEST_BROKER_DIR"
port() { sed -n 's#.*http://127.0.0.1:\([0-9]*\)/.*#\1#p' "$T/dash.log" | head -1; }
listening() { [ -n "$(port)" ]; }
check "the dashboard says where it listens" wait_for 15 listening
P=$(port)
echo "  dashboard on port $P (pid $PID_dash)"
submitted() { "$BIN/specline" shot submit "$T/config.yaml" "$EX/shots-train.csv" >>"$T/shots.log" 2>&1; }
check "the experiment's shots are submitted" wait_for 30 submitted
rss() { awk '/VmRSS/{print $2}' "/proc/$PID_dash/status"; }
RSS0=$(rss)

check "the page drives in headless Chromium" env CHROMIUM="$CHROMIUM" timeout 250 node "$SRC/tests/browser/drive.js" \
  "http://127.0.0.1:$P/" "$OUT"
echo "  dashboard VmRSS: ${RSS0} kB after start, $(rss) kB after the browser run"
ls -l "$OUT"/*.png 2>/dev/null | sed 's/^/  /'

# ---- what a request can and cannot do
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "a point outside the value_range is refused" eq "$(code "http://127.0.0.1:$P/api/predict?x=9,1,0.5,1.2,0")" 400
check "text in the point is refused" eq "$(code "http://127.0.0.1:$P/api/predict?x=0.1,1,0.5,1.2,0%3Brm%20-rf")" 400
check "an axis out of range is refused" eq "$(code "http://127.0.0.1:$P/api/predict?x=0.1,1,0.5,1.2,0&axis=5")" 400
check "a run id with other characters is refused" eq "$(code "http://127.0.0.1:$P/api/run?id=s1%27%3Bdrop")" 400
check "an unknown run is not found" eq "$(code "http://127.0.0.1:$P/api/run?id=s0000000000000000")" 404
RUN=$(curl -s "http://127.0.0.1:$P/api/snapshot" | jq -r '.runs[0].id')
check "a listed run is read from the store" eq "$(curl -s "http://127.0.0.1:$P/api/run?id=$RUN" | jq -r '.run.sample_id')" "$RUN"
check "predicted vs actual answers" eq "$(curl -s "http://127.0.0.1:$P/api/pva" | jq -r '.models[0].kind')" surrogate
check "a path outside the page is not found" eq "$(code --path-as-is "http://127.0.0.1:$P/../../etc/passwd")" 404
check "only GET" eq "$(code -X POST "http://127.0.0.1:$P/api/config")" 405
check "a foreign Host (DNS rebinding) is refused on loopback" eq "$(code -H 'Host: evil.example' "http://127.0.0.1:$P/api/config")" 403

# ---- the token, on a non-loopback bind
rc=0; "$BIN/specline" dashboard "$T/config.yaml" --listen 0.0.0.0:0 >"$T/notoken.log" 2>&1 || rc=$?
check "a non-loopback bind without a token is refused" eq "$rc" 2
check "  and says why" grep -q "needs a token" "$T/notoken.log"
rc=0; "$BIN/specline" dashboard "$T/config.yaml" --listen 0.0.0.0:0 --token abcdefghijklmnopq >"$T/argv.log" 2>&1 || rc=$?
check "a token on the command line is refused" eq "$rc" 2
TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=' | head -c 32)
printf '%s\n' "$TOKEN" >"$T/token"; chmod 600 "$T/token"
start dash2 "$BIN/specline" dashboard "$T/config.yaml" --listen 0.0.0.0:0 --token-file "$T/token" \
  --broker-dir "$SPECLINE_TEST_BROKER_DIR"
port2() { sed -n 's#.*:\([0-9]*\)/?token=TOKEN#\1#p' "$T/dash2.log" | head -1; }
listening2() { [ -n "$(port2)" ]; }
check "the token-protected dashboard starts" wait_for 15 listening2
P2=$(port2)
for path in / /api/config /api/snapshot /events "/api/predict?x=0.1,1,0.5,1.2,0" /api/pva "/api/run?id=$RUN" /dashboard.js; do
  check "no token: $path is refused (401)" eq "$(code "http://127.0.0.1:$P2$path")" 401
done
check "a wrong token is refused" eq "$(code -H "Authorization: Bearer x$TOKEN" "http://127.0.0.1:$P2/api/config")" 401
check "the token as a bearer is accepted" eq "$(code -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P2/api/config")" 200
check "the token on the page's URL is accepted" eq "$(code "http://127.0.0.1:$P2/?token=$TOKEN")" 200
check "  and the page gets it as a cookie" bash -c "curl -s -D - -o /dev/null 'http://127.0.0.1:$P2/?token=$TOKEN' | grep -qi '^set-cookie: sl_dash_token=.*HttpOnly'"
check "the cookie is accepted" eq "$(code -b "sl_dash_token=$TOKEN" "http://127.0.0.1:$P2/api/snapshot")" 200
check "the token never shows in the process list" bash -c "! grep -q '$TOKEN' /proc/$PID_dash2/cmdline"
# the store's file is open read-only in the dashboard (O_ACCMODE 0; SQLite still maps the
# -wal and -shm files read-write to share the readers' locks, and writes neither)
ro_store() {
  local fd found=
  for fd in /proc/$PID_dash/fd/*; do
    case "$(readlink "$fd")" in
    "$T/store.db")
      found=1
      [ $((8#$(awk '/^flags/{print $2}' "/proc/$PID_dash/fdinfo/${fd##*/}") & 3)) -eq 0 ] || return 1 ;;
    esac
  done
  [ -n "$found" ]
}
check "the dashboard holds the store read-only" ro_store
finish
