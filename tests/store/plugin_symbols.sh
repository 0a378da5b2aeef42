#!/usr/bin/env bash
# Usage: plugin_symbols.sh BIN_DIR PLUGIN
# For each binary that opens a store: libmongoc is not among what it loads (a SQLite
# worker stays small), every sl_* symbol the MongoDB plugin leaves undefined is exported
# by the binary, and the CLI reaches the driver through the plugin found beside it
# (no SPECLINE_PLUGIN_DIR): an unreachable server is a connection error, not "needs".
set -u
bin=$1 plugin=$2 fail=0
[ -f "$plugin" ] || { echo "FAIL: no plugin at $plugin"; exit 1; }
need=$(nm -D --undefined-only "$plugin" | awk '$2 ~ /^sl_/ {print $2}' | sort -u)
[ -n "$need" ] || { echo "FAIL: the plugin takes nothing from the host?"; fail=1; }
for b in specline specline-store specline-explore specline-learn specline-predict; do
  exe=$bin/$b
  if [ ! -x "$exe" ]; then echo "FAIL: $exe missing"; fail=1; continue; fi
  if readelf -d "$exe" | grep -q 'NEEDED.*libmongoc'; then
    echo "FAIL: $b links libmongoc"; fail=1
  fi
  have=$(nm -D --defined-only "$exe" | awk '{print $3}' | sort -u)
  missing=$(comm -23 <(echo "$need") <(echo "$have"))
  if [ -n "$missing" ]; then
    echo "FAIL: $b does not export: $(echo $missing)"; fail=1
  else
    echo "ok   $b: no libmongoc, exports the $(echo "$need" | wc -l) symbols the plugin needs"
  fi
done

t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cat >"$t/c.yaml" <<YAML
experiment: osc
inputs:
  - {name: zeta, type: float, value_range: [0.0, 1.0]}
outputs:
  - {name: amplitude, type: float}
simulator: {command: ["true"], max_steps: 10}
budget: {max_sims: 1}
store: sqlite:$t/s.db
YAML
out=$(env -u SPECLINE_PLUGIN_DIR "$bin/specline" results "$t/c.yaml" \
  --store 'mongodb://127.0.0.1:1/specline_plugin_test?serverSelectionTimeoutMS=300&connectTimeoutMS=300' 2>&1)
rc=$?
if [ $rc -eq 0 ] || ! grep -qi 'mongodb' <<<"$out" || grep -q 'needs libspecline' <<<"$out"; then
  echo "FAIL: specline results on an unreachable MongoDB (rc $rc): $out"; fail=1
else
  echo "ok   specline results loads the plugin beside it: $(head -c 160 <<<"$out")"
fi
[ $fail -eq 0 ] && echo "all ok"
exit $fail
