#!/usr/bin/env bash
# Runs the whole test suite: installs and builds (scripts/setup.sh), then ctest. The
# system tests start their own RabbitMQ (and Slurm) on loopback; nothing else is needed.
# Usage: scripts/test.sh [ctest args, e.g. -L unit or -R proto]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh ${SPECLINE_CMAKE_ARGS:-}
cd build
ctest --output-on-failure --timeout 900 -j"${SPECLINE_TEST_JOBS:-2}" "$@"
