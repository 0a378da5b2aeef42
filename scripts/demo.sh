#!/usr/bin/env bash
# Sets up everything and runs a real campaign end to end on this machine: a local
# RabbitMQ, the store, explore and simulate workers, the oscillator simulator.
# Usage: scripts/demo.sh [CONFIG]   (default examples/oscillator/config.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cfg=${1:-examples/oscillator/config.yaml}
build/bin/specline run "$cfg"
build/bin/specline results "$cfg" | head -20
