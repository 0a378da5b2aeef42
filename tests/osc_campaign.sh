# shellcheck shell=bash
# The oscillator campaign that the line, fault, cluster, Slurm and CLI shell tests (and
# bench/latency/cancel.sh) run, in one place (sourced): specline-sim-oscillator's five
# inputs, its outputs and its history x, written by osc_yaml with the few keys a test sets.

# osc_yaml FILE KEY=VALUE...: writes the oscillator campaign's config to FILE.
# Required keys: experiment, store (a store URL), max_steps, seed, max_sims, wall_s, slots.
# Optional keys (default): checkpoints (8), step_delay (none), command (the simulator
# command as YAML list items, '"specline-sim-oscillator"'), persistent (none; "true":
# persistent simulators), max_runs (none: max_runs_per_process), bundle (none),
# initial_n (8), oversubscribe (2), max_failed (none), simulate_workers (1), outputs
# ("amplitude max_abs_x"). An empty value is the same as leaving the key out. An unknown
# or missing key is an error naming it (status 2, nothing written).
osc_yaml() {
  local file=$1 kv key o
  shift
  local experiment="" store="" max_steps="" seed="" max_sims="" wall_s="" slots="" \
    checkpoints=8 step_delay="" command='"specline-sim-oscillator"' persistent="" max_runs="" \
    bundle="" initial_n=8 oversubscribe=2 max_failed="" simulate_workers=1 outputs="amplitude max_abs_x"
  for kv in "$@"; do
    key=${kv%%=*}
    case $key in
    experiment | store | max_steps | seed | max_sims | wall_s | slots | checkpoints | step_delay | \
      command | persistent | max_runs | bundle | initial_n | oversubscribe | max_failed | \
      simulate_workers | outputs) printf -v "$key" '%s' "${kv#*=}" ;;
    *)
      echo "osc_yaml: unknown key '$key' in '$kv'" >&2
      return 2
      ;;
    esac
  done
  for key in experiment store max_steps seed max_sims wall_s slots; do
    [ -n "${!key}" ] || {
      echo "osc_yaml: $file: missing key '$key'" >&2
      return 2
    }
  done
  {
    echo "experiment: $experiment"
    cat <<'YAML'
inputs:
  - {name: zeta,   type: float, value_range: [0.05, 0.5]}
  - {name: omega0, type: float, value_range: [0.5, 2.0]}
  - {name: F,      type: float, value_range: [0.1, 1.0]}
  - {name: omega,  type: float, value_range: [0.5, 2.0]}
  - {name: x0,     type: float, value_range: [-1.0, 1.0]}
outputs:
YAML
    for o in $outputs; do echo "  - {name: $o, type: float}"; done
    echo "history: {name: x, checkpoints: $checkpoints}"
    echo "simulator: {command: [$command], max_steps: $max_steps${step_delay:+, step_delay: $step_delay}${persistent:+, persistent: $persistent}${max_runs:+, max_runs_per_process: $max_runs}${bundle:+, bundle: $bundle}}"
    echo "policy: {initial: sobol, initial_n: $initial_n, acquisition: none, oversubscribe: $oversubscribe, seed: $seed}"
    echo "budget: {max_sims: $max_sims, wall_s: $wall_s${max_failed:+, max_failed: $max_failed}}"
    echo "workers: {simulate_workers: $simulate_workers, slots: $slots}"
    echo "store: $store"
  } >"$file"
}
