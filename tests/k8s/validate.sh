#!/usr/bin/env bash
# deploy/k8s validated offline: every manifest against its schema (validate.js), the
# negative fixtures in bad/ must fail with the expected message, a broken cross-reference
# must fail, the campaign in the ConfigMap passes `specline config check`, and yamllint
# (when installed) is happy. Needs the packages install.sh put in SPECLINE_K8S_NODE_DIR.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${SPECLINE_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
NODE_DIR=${SPECLINE_K8S_NODE_DIR:?}
BIN=${SPECLINE_BIN_DIR:-}
export NODE_PATH=$NODE_DIR/node_modules
M=$SRC/deploy/k8s
T=$(mktemp -d /tmp/specline-k8s.XXXXXX)
trap 'rm -rf "$T"' EXIT
FAILS=0
CHECKS=0
check() {
  local what=$1
  shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; FAILS=$((FAILS + 1)); fi
}

for m in kubernetes-models js-yaml ajv; do
  if [ ! -f "$NODE_PATH/$m/package.json" ]; then
    echo "SKIP: $m is not installed in $NODE_DIR (tests/k8s/install.sh)"
    echo "0 passed, 0 failed"
    exit 77
  fi
done

# valid FILES...: validate.js accepts them
valid() {
  node "$HERE/validate.js" "$@" >"$T/out" 2>&1 && return 0
  grep -v '^ok ' "$T/out" | head -20
  return 1
}
# refused PATTERN ARGS...: validate.js exits 1 with a FAIL line matching PATTERN
refused() {
  local pat=$1 rc
  shift
  node "$HERE/validate.js" "$@" >"$T/out" 2>&1
  rc=$?
  if [ $rc -eq 1 ] && grep -E '^FAIL ' "$T/out" | grep -qE -- "$pat"; then return 0; fi
  echo "  status $rc, wanted a failure matching '$pat':"
  head -5 "$T/out"
  return 1
}

check "deploy/k8s: every object valid, every reference defined" valid "$M"/*.yaml
check "wrong type (replicas: \"three\") is refused" refused 'replicas must be integer' --single "$HERE/bad/replicas-string.yaml"
check "missing required field (container name) is refused" refused "required property '?name" --single "$HERE/bad/container-no-name.yaml"
check "missing required field (Job template) is refused" refused "required property '?template" --single "$HERE/bad/job-no-template.yaml"
check "unknown kind is refused" refused "unknown kind 'Deploymnet'" --single "$HERE/bad/unknown-kind.yaml"
check "KEDA: wrong type (maxReplicaCount: \"ten\") is refused" refused 'maxReplicaCount must be integer' --single "$HERE/bad/keda-max-string.yaml"
check "KEDA: missing scaleTargetRef.name is refused" refused "required property 'name'" --single "$HERE/bad/keda-no-target-name.yaml"
check "KEDA: a number in trigger metadata is refused" refused 'metadata/value must be string' --single "$HERE/bad/keda-metadata-number.yaml"
check "KEDA: unknown kind is refused" refused "unknown kind 'ScaledThing'" --single "$HERE/bad/keda-unknown-kind.yaml"

mkdir -p "$T/queue" "$T/secret"
cp "$M"/*.yaml "$T/queue/"
sed -i 's/queueName: .*/queueName: other.sim/' "$T/queue/60-autoscaling.yaml"
check "a KEDA trigger on another campaign's queue is refused" refused "work queue is 'oscillator.sim'" "$T/queue"/*.yaml
cp "$M"/*.yaml "$T/secret/"
sed -i '/^  credentials: "specline:CHANGE-ME-mongodb/d' "$T/secret/10-secrets.yaml"
check "a mount of an undefined Secret key is refused" refused "Secret 'mongodb-credentials' key 'credentials' is not defined" "$T/secret"/*.yaml

check "every Secret value is a placeholder" bash -c "! grep -nE '^  (password|credentials|keda-host): ' '$M/10-secrets.yaml' | grep -v CHANGE-ME"

node -e 'const y=require("js-yaml"),fs=require("fs");
for (const d of y.loadAll(fs.readFileSync(process.argv[1],"utf8")))
  if (d && d.kind==="ConfigMap" && d.metadata.name==="specline-campaign") fs.writeFileSync(process.argv[2], d.data["config.yaml"]);' \
  "$M/20-config.yaml" "$T/config.yaml"
if [ -n "$BIN" ] && [ -x "$BIN/specline" ]; then
  check "the campaign in the ConfigMap passes specline config check" "$BIN/specline" config check "$T/config.yaml"
else
  echo "skip the campaign check: specline is not built"
fi

if command -v yamllint >/dev/null; then
  check "yamllint" yamllint -s -d '{extends: default, rules: {line-length: {max: 130}, document-start: disable,
    braces: {max-spaces-inside: 1}, brackets: {max-spaces-inside: 1}, comments: {min-spaces-from-content: 1}}}' \
    "$M"/*.yaml "$HERE"/bad/*.yaml
else
  echo "skip yamllint: not installed"
fi
echo "$((CHECKS - FAILS)) passed, $FAILS failed"
[ $FAILS -eq 0 ]
