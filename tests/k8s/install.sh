#!/usr/bin/env bash
# Installs the validator's npm packages (package.json, package-lock.json: kubernetes-models,
# js-yaml, ajv) into DIR (in the build tree), once: a later run finds them and needs no network.
# Exits 77 (skip) when npm is missing or the registry cannot be reached.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:?usage: install.sh DIR}
mkdir -p "$DIR"
have() {
  [ -f "$DIR/package.json" ] && cmp -s "$HERE/package.json" "$DIR/package.json" || return 1
  local m
  for m in kubernetes-models js-yaml ajv; do [ -f "$DIR/node_modules/$m/package.json" ] || return 1; done
}
if have; then
  echo "k8s validator packages already in $DIR"
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "SKIP: node and npm are needed (Debian: nodejs npm)"
  exit 77
fi
cp "$HERE/package.json" "$HERE/package-lock.json" "$DIR/"
if ! timeout 300 npm ci --no-audit --no-fund --prefix "$DIR" >"$DIR/npm.log" 2>&1; then
  tail -5 "$DIR/npm.log"
  echo "SKIP: npm could not install the validator packages (registry unreachable?)"
  exit 77
fi
have || { echo "npm ran but the packages are missing in $DIR"; exit 1; }
echo "k8s validator packages installed in $DIR"
