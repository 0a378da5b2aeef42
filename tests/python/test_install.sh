#!/usr/bin/env bash
# `pip install ./python` works offline with Debian's packages: a venv that sees the system
# site-packages (python3-pandas), pip without build isolation or an index, then the
# installed module (not the checkout) is imported and finds the specline command.
set -euo pipefail
PY=${1:-/usr/bin/python3}
SRC=${SPECLINE_SOURCE_DIR:?}
T=$(mktemp -d /tmp/specline-pyinst-XXXXXX)
trap 'rm -rf "$T"' EXIT
"$PY" -m venv --system-site-packages "$T/venv"
cp -r "$SRC/python" "$T/src" # a build writes into the source tree: build a copy
"$T/venv/bin/pip" install -q --no-build-isolation --no-index --no-deps "$T/src"
where=$(cd / && env -u PYTHONPATH "$T/venv/bin/python" -c 'import specline, pandas; print(specline.__file__); print(specline.find_binary())')
case "$where" in
"$T/venv/"*) echo "ok   installed into the venv: $(head -1 <<<"$where")" ;;
*) echo "FAIL specline imported from $where"; echo "0 passed, 1 failed"; exit 1 ;;
esac
echo "ok   finds the command: $(tail -1 <<<"$where")"
echo "2 passed, 0 failed"
