#!/usr/bin/env bash
# Installs what specline needs on Debian 12 (as root) and builds it into build/.
# Idempotent: packages already present are skipped, the build is incremental.
# Usage: scripts/setup.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      rabbitmq-server librabbitmq-dev libmongoc-dev libbson-dev libyaml-dev libjansson-dev
      libuv1-dev libcurl4-openssl-dev libsqlite3-dev sqlite3 openssl procps iproute2
      python3-celery python3-pandas python3-venv slurm-wlm munge yamllint shellcheck
      libmicrohttpd-dev chromium curl help2man)
# libmicrohttpd: `specline dashboard`'s HTTP server; chromium (headless) and curl: its
# browser test (tests/browser, driven from node over the DevTools pipe, no npm package);
# help2man: the man pages, written from each program's --help at build time
# node and npm (the k8s manifest validation): the machine's own if present, else Debian's
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build build -j"$(nproc)"
