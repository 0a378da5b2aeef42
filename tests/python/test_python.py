"""The Python module (python/specline) against a real store: the oscillator example's
config copied to a temp dir, its SQLite store filled by the mkstore helper through the C
store API, then read from another directory with specline.results / shots / histories /
models, and a DataFrame of shots validated by `specline shot submit --dry-run`. pandas
missing is a failure, not a skip: scripts/setup.sh installs python3-pandas."""

import os
import shutil
import subprocess
import sys
import tempfile
import traceback

import numpy as np
import pandas as pd  # a missing pandas fails the test here

import specline

SRC = os.environ["SPECLINE_SOURCE_DIR"]
MKSTORE = os.environ["SPECLINE_TEST_MKSTORE"]


def setup(tmp):
    camp = os.path.join(tmp, "campaign")
    os.makedirs(camp)
    cfg = os.path.join(camp, "config.yaml")
    shutil.copy(os.path.join(SRC, "examples", "oscillator", "config.yaml"), cfg)
    n = int(subprocess.check_output([MKSTORE, cfg], cwd=tmp, text=True))
    assert os.path.exists(os.path.join(camp, "run", "oscillator.db")), "the store is beside the config"
    return cfg, n


def test_results(cfg, n):
    df = specline.results(cfg, experimental=False)
    assert isinstance(df, pd.DataFrame)
    assert len(df) == n, f"{len(df)} rows, want {n}"
    for col in ("sample_id", "zeta", "omega0", "amplitude", "status", "steps", "reason", "history", "predicted"):
        assert col in df.columns, f"no column {col}: {list(df.columns)}"
    assert list(df.columns[:3]) == ["sample_id", "zeta", "omega0"]
    done = df[df.status == "complete"]
    assert len(done) == 3
    assert all(isinstance(h, np.ndarray) and len(h) == 40 for h in done.history)
    assert done.history.iloc[0][1] == 0.1
    stop = df[df.status == "terminated"].iloc[0]
    assert stop.reason == "speculative stop after checkpoint 16/32: tracked the model (z2 2.5)", stop.reason
    assert len(stop.history) == 20
    assert stop.predicted["checkpoint"][0] == 16 and len(stop.predicted["mean"]) == 16
    assert stop.predicted["z2"] == 2.5
    failed = df[df.status == "failed"].iloc[0]
    assert failed.reason.startswith("not JSON"), failed.reason
    assert len(failed.history) == 0 and failed.predicted is None
    assert len(specline.results(cfg)) == n + 1
    assert len(specline.results(cfg, status=["complete", "failed"])) == 5  # the shot is complete too


def test_shots(cfg, n):
    s = specline.shots(cfg)
    assert len(s) == 1 and bool(s.experimental_flag.iloc[0])
    assert s.shot_number.iloc[0] == 42 and s.date.iloc[0] == "2024-05-06"


def test_histories(cfg, n):
    h = specline.histories(cfg, experimental=False)
    assert set(h.columns) == {"sample_id", "variable", "step", "value", "std", "predicted"}
    assert (h.variable == "log_env").all()
    pred = h[h.predicted]
    assert len(pred) == 16 and pred.sample_id.unique().tolist() == ["pt-3"]
    assert (pred.step > 0).all() and (pred["std"] == 0.01).all()
    assert len(h[~h.predicted]) == 3 * 40 + 20


def test_models(cfg, n):
    m = specline.models(cfg)
    assert len(m) == 1 and m.model_id.iloc[0] == "m-0001" and m.kind.iloc[0] == "surrogate"
    assert m.nrmse.iloc[0] == 0.125 and m.metrics.iloc[0]["n_train"] == 4


def test_submit_dry_run(cfg, n):
    shots = pd.DataFrame({"zeta": [0.1, 0.2], "omega0": [1.0, 1.1], "F": [0.5, 0.5], "omega": [1.2, 1.2],
                          "x0": [0.0, 0.0], "amplitude": [1.5, 1.6], "shot_number": [1, 2]})
    specline.submit_shots(cfg, shots, dry_run=True)
    bad = shots.assign(zeta=[9.0, 0.2])
    try:
        specline.submit_shots(cfg, bad, dry_run=True)
    except specline.SpeclineError as e:
        assert e.returncode != 0 and "zeta" in str(e), str(e)
    else:
        raise AssertionError("a shot outside the value_range was accepted")


def test_one_liner(cfg, n):
    """The issue's own check, from another directory with the package on PYTHONPATH."""
    code = "import specline; df = specline.results(%r); print(len(df), type(df.history.iloc[0]).__name__)" % cfg
    out = subprocess.check_output([sys.executable, "-c", code], cwd="/", text=True)
    assert out.split() == [str(n + 1), "ndarray"], out


def main():
    tmp = tempfile.mkdtemp(prefix="specline-py-")
    passed = failed = 0
    try:
        cfg, n = setup(tmp)
        other = os.path.join(tmp, "elsewhere")
        os.makedirs(other)
        os.chdir(other)  # results follow the config file, not the current directory
        for t in (test_results, test_shots, test_histories, test_models, test_submit_dry_run, test_one_liner):
            try:
                t(cfg, n)
                print(f"ok   {t.__name__}")
                passed += 1
            except Exception:
                traceback.print_exc()
                print(f"FAIL {t.__name__}")
                failed += 1
        assert not os.path.exists(os.path.join(other, "run")), "a store was created in the current directory"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
