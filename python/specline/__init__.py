"""specline from Python: a campaign's points, histories, shots and models as pandas
DataFrames, and experimental shots submitted from a file or a DataFrame.

Every function calls the `specline` command (`specline results --jsonl`, `specline shot
submit`, `specline config check --print`), so a SQLite store and a MongoDB store (Synapse
layout) read the same, and nothing here re-implements a store layout or a message format.
The command is found by find_binary(): $SPECLINE_BIN, $SPECLINE_BIN_DIR, PATH, then the
checkout's build/bin.
"""

import json
import os
import tempfile

import numpy as np
import pandas as pd

from ._cli import SpeclineError, find_binary, run

__all__ = ["results", "shots", "histories", "models", "submit_shots", "config", "find_binary", "SpeclineError"]
__version__ = "0.1.0"


def config(config_path):
    """The effective config (defaults filled in, paths resolved under "resolved") as a dict,
    from `specline config check --print --no-simulator` (the simulator need not be here)."""
    return json.loads(run("config", "check", "--print", "--no-simulator", config_path))


def _points(config_path, experimental=None, status=None, store=None):
    args = ["results", config_path, "--jsonl"]
    if experimental is True:
        args.append("--experimental")
    elif experimental is False:
        args.append("--simulations")
    if status:
        args += ["--status", status if isinstance(status, str) else ",".join(status)]
    if store:
        args += ["--store", store]
    return [json.loads(line) for line in run(*args).splitlines() if line.strip()]


def _history_name(cfg):
    h = cfg.get("history")
    return h.get("name") if isinstance(h, dict) else None


def _row(p, hname, inputs, outputs):
    row = {"sample_id": p["sample_id"]}
    for name in inputs:
        row[name] = p["inputs"].get(name)
    for name in outputs:
        row[name] = p["outputs"].get(name)
    for key in ("status", "steps", "experimental_flag", "origin", "reason", "error", "wall_s", "produced_at",
                "worker", "date"):
        row[key] = p.get(key)
    for name, v in (p.get("extra") or {}).items():
        row[name if name not in row else "extra_" + name] = v
    series = p.get("history") or {}
    h = series.get(hname) if hname else next(iter(series.values()), None)
    row["history"] = np.asarray(h["observed"] if h else [], dtype=float)
    pred = (h or {}).get("predicted")
    if pred or p.get("predicted"):
        row["predicted"] = dict((pred or {}), **(p.get("predicted") or {}))
    else:
        row["predicted"] = None
    return row


def results(config_path, experimental=None, status=None, store=None):
    """The points a campaign has stored, one row per point in insertion order.

    Columns: sample_id, the config's inputs and outputs, status, steps, experimental_flag,
    origin, reason (stop rule and statistic, operator terminate, failure text), error,
    wall_s, produced_at, worker, date, shot metadata (shot_number, ...), `history` (a numpy
    array of the observed values of the history variable, one per step) and `predicted`
    (None, or for a stopped run the prediction its stop relied on: a dict with lists
    checkpoint, step, mean, std and scalars such as z2).

    experimental: None for every point, True for shots only, False for simulations only.
    status: "complete", "terminated", "failed" or a list of them. store: a store URI that
    replaces the config's (a relative sqlite: path here is relative to the current
    directory; the config's own is relative to the config file).
    """
    cfg = config(config_path)
    inputs = [v["name"] for v in cfg.get("inputs", [])]
    outputs = [v["name"] for v in cfg.get("outputs", [])]
    hname = _history_name(cfg)
    rows = [_row(p, hname, inputs, outputs) for p in _points(config_path, experimental, status, store)]
    columns = ["sample_id"] + inputs + outputs + ["status", "steps", "experimental_flag", "origin", "reason",
                                                   "error", "wall_s", "produced_at", "worker", "date"]
    for r in rows:
        columns += [k for k in r if k not in columns and k not in ("history", "predicted")]
    columns += ["history", "predicted"]
    return pd.DataFrame(rows, columns=columns)


def shots(config_path, store=None):
    """The experimental shots the campaign has stored: results(..., experimental=True)."""
    return results(config_path, experimental=True, store=store)


def histories(config_path, experimental=None, store=None):
    """Every history in long form, observed and predicted together: one row per value with
    columns sample_id, variable, step (1-based), value, std (predicted only, else NaN) and
    predicted (False for what the simulator printed, True for the prediction a speculative
    stop relied on, at its checkpoints' steps)."""
    out = []
    for p in _points(config_path, experimental, None, store):
        for name, h in (p.get("history") or {}).items():
            for i, v in enumerate(h.get("observed", [])):
                out.append((p["sample_id"], name, i + 1, v, np.nan, False))
            pred = h.get("predicted")
            if pred:
                for s, m, sd in zip(pred["step"], pred["mean"], pred["std"]):
                    out.append((p["sample_id"], name, s, m, np.nan if sd is None else sd, True))
    return pd.DataFrame(out, columns=["sample_id", "variable", "step", "value", "std", "predicted"]).astype(
        {"step": "int64", "value": "float64", "std": "float64", "predicted": "bool"})


def models(config_path, store=None):
    """The models the campaign has stored, oldest first: model_id, kind, created_at,
    metrics (a dict), and one column per numeric metric (nrmse, coverage, n_train, ...).
    A MongoDB store lists the newest model of each kind."""
    args = ["results", config_path, "--models", "--jsonl"] + (["--store", store] if store else [])
    rows = []
    for line in run(*args).splitlines():
        if not line.strip():
            continue
        m = json.loads(line)
        row = {"model_id": m["model_id"], "kind": m["kind"], "created_at": m.get("created_at"),
               "metrics": m.get("metrics") or {}}
        for k, v in row["metrics"].items():
            if isinstance(v, (int, float)) and k not in row:
                row[k] = v
        rows.append(row)
    cols = ["model_id", "kind", "created_at", "metrics"]
    for r in rows:
        cols += [k for k in r if k not in cols]
    return pd.DataFrame(rows, columns=cols)


def submit_shots(config_path, shots_data, skip_bad=False, dry_run=False, broker_dir=None, timeout=None):
    """Submits experimental shots with `specline shot submit` (validated against the config,
    published to the campaign's store queue; a store worker writes them). shots_data is a
    CSV or JSON-lines file path, or a DataFrame with the config's input and output columns
    and optionally date, shot_number, scan_number. Returns what the command printed.
    Raises SpeclineError when the command refuses the shots or finds no broker."""
    args = ["shot", "submit", config_path]
    tmp = None
    if isinstance(shots_data, pd.DataFrame):
        fd, tmp = tempfile.mkstemp(prefix="specline-shots-", suffix=".csv")
        with os.fdopen(fd, "w", newline="") as f:
            shots_data.to_csv(f, index=False)
        args.append(tmp)
    else:
        args.append(os.fspath(shots_data))
    if skip_bad:
        args.append("--skip-bad")
    if dry_run:
        args.append("--dry-run")
    if broker_dir:
        args += ["--broker-dir", broker_dir]
    if timeout is not None:
        args += ["--timeout", str(timeout)]
    try:
        return run(*args)
    finally:
        if tmp:
            os.unlink(tmp)
