#!/usr/bin/env bash
# Sets up everything and runs a real campaign end to end on this machine: a local
# RabbitMQ, the store, explore and simulate workers, the oscillator simulator.
# Usage: scripts/demo.sh [CONFIG]   (default examples/oscillator/config.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cfg=${1:-examples/oscillator/config.yaml}
build/bin/specline run "$cfg"
# the runs explore stopped early, and why (all points: specline results "$cfg"; no `| head`
# here: with pipefail the reader's SIGPIPE would fail the demo)
echo
echo "runs stopped early (specline results $cfg --status terminated):"
build/bin/specline results "$cfg" --status terminated --columns sample_id,steps,origin,reason
