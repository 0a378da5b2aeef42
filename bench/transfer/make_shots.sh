#!/bin/sh
# Regenerates examples/oscillator-experiment/shots-*.csv with make_shots (see make_shots.c).
# usage: bench/transfer/make_shots.sh BUILD_DIR   (e.g. build)
set -eu
build=${1:-build}
src=$(cd "$(dirname "$0")/../.." && pwd)
ms="$build/bench/transfer/make_shots"
ex="$src/examples/oscillator-experiment"
"$ms" --seed 11 --n 20 --first-shot 1 --out "$ex/shots-train.csv"
"$ms" --seed 12 --n 20 --first-shot 21 --out "$ex/shots-extra.csv"
"$ms" --seed 13 --n 1000 --first-shot 1001 --out "$ex/shots-heldout.csv"
