# shellcheck shell=bash
# The ramp campaign shared by line_speculative and fault_speculative_kills (sourced after
# the suite's own lib.sh, which sets $T): a user's own simulator, x(t) = a·t + b in 40
# steps of 0.05 s, easy to learn so that speculative stops begin within the budget, and a
# campaign with a learner, `acquisition: max_std` and speculation with audits.

# ramp_campaign CAMPAIGN BUDGET: writes $T/ramp.py and $T/config.yaml (store
# $T/store.db); BUDGET is the body of the config's budget mapping, e.g.
# "max_sims: 44, wall_s: 240".
ramp_campaign() {
  local c=$1 budget=$2
  cat >"$T/ramp.py" <<'PY'
#!/usr/bin/python3
# a user's own simulator: x(t) = a*t + b for t = step/N, sleeping between steps
import json, sys, time
delay = float(sys.argv[sys.argv.index("--step-delay") + 1]) if "--step-delay" in sys.argv else 0.0
task = json.loads(sys.stdin.readline())
a, b, n = task["inputs"]["a"], task["inputs"]["b"], task["max_steps"]
for i in range(1, n + 1):
    print(json.dumps({"step": i, "t": i / n, "values": {"x": a * i / n + b}}), flush=True)
    time.sleep(delay)
print(json.dumps({"final": {"y": a + b}}), flush=True)
PY
  chmod +x "$T/ramp.py"
  cat >"$T/config.yaml" <<YAML
experiment: $c
inputs:
  - {name: a, type: float, default: 1.0, value_range: [0.5, 1.5]}
  - {name: b, type: float, default: 0.0, value_range: [-0.5, 0.5]}
outputs:
  - {name: y, type: float}
history: {name: x, checkpoints: 10}
simulator: {command: ["$T/ramp.py"], max_steps: 40, step_delay: 0.05}
policy:
  initial: sobol
  initial_n: 16
  acquisition: max_std
  oversubscribe: 2
  seed: 5
  speculative: {enabled: true, min_fraction: 0.3, confidence: 0.1, surprise_p: 0.01, audit_fraction: 0.5}
budget: {$budget}
learn: {ensemble: 4, hidden: 16, layers: 2, epochs: 600, retrain_every: 4, validation_fraction: 0.2, loss: mse}
workers: {simulate_workers: 2, slots: 2}
store: sqlite:$T/store.db
YAML
}
