#!/usr/bin/env bash
# Simulators that segfault, print garbage, hang, exit non-zero or write a huge line each
# give a failed point with a reason; the campaign completes. The simulator is the user's
# own program given by path (a script wrapping specline-sim-faulty).
. "$(dirname "$0")/lib.sh"
C="line-faulty-$$"
cat >"$T/my-sim.sh" <<'SH'
#!/bin/sh
# a user's own simulator: picks a misbehaviour from the input "mode"
exec specline-sim-faulty "$@"
SH
chmod +x "$T/my-sim.sh"
cat >"$T/config.yaml" <<YAML
experiment: $C
inputs:
  - {name: mode, type: float, value_range: [0.0, 6.0]}
outputs:
  - {name: y, type: float}
simulator: {command: ["$T/my-sim.sh"], max_steps: 5, wall_s: 3, term_grace_s: 1}
policy: {initial: grid, initial_n: 6, acquisition: none, oversubscribe: 1, seed: 1}
budget: {max_sims: 12, wall_s: 200, max_failed: 12} # every failure is the point here
workers: {simulate_workers: 1, slots: 3}
store: sqlite:$T/store.db
YAML
timeout 200 "$BIN/specline" run "$T/config.yaml" --no-progress >"$T/run.log" 2>&1 || rc=$?
check "specline run exits 0" eq "$rc" 0
check "12 points stored" eq "$(sql "select count(*) from \"$C\"")" 12
q() { sql "select count(*) from \"$C\" where status='failed' and error like '$1'"; }
check "mode 0 completes" test "$(sql "select count(*) from \"$C\" where status='complete' and mode < 1")" -ge 1
check "a segfault is a failed point" test "$(q '%signal 11%')" -ge 1
check "garbage output is a failed point" test "$(q '%bad simulator output%not JSON%')" -ge 1
check "a hang hits the wall limit" test "$(q '%wall limit%')" -ge 1
check "a non-zero exit keeps the stderr tail" test "$(q '%status 3%simulated failure%')" -ge 1
check "a huge line is refused" test "$(q '%longer than%')" -ge 1
check "the simulate worker survived (no restarts)" eq "$(grep -c 'restarting' "$T/run.log" || true)" 0
finish
