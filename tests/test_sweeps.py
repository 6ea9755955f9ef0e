"""Sweeps: specs, seeds, Dask engines, the store, crash-safe resume, failures, sensitivity."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from abm.cli import app
from abm.config import ConfigError
from abm.results import load, query
from abm.sweeps.runner import run_sweep
from abm.sweeps.sensitivity import sobol_indices
from abm.sweeps.spec import SweepSpec, load_spec

VENV_BIN = Path(sys.executable).parent
VOLATILE = ["wall_seconds", "run_seconds"]

TINY = """
name = "tiny"
base = "small"
design = "grid"
replicates = 2
master_seed = 9
keep = "{keep}"

[set]
"retail.n_traders" = 60
"calendar.trading_days" = {days}

[vary]
retail_long_share = [0.5, 0.7, 0.9]
margin_rate = {margins}
"""


def tiny_spec(tmp_path, keep="summary", days=8, margins="[0.1, 0.2]") -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY.format(keep=keep, days=days, margins=margins))
    return p


def table(root: Path) -> pd.DataFrame:
    return load(root).drop(columns=VOLATILE).sort_values("run_id").reset_index(drop=True)


# -- specs and seeds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, words",
    [
        ('name = "x"\n[vary]\nmargin_rat = [0.1]', ["margin_rat", "unknown config key"]),
        ('name = "x"\n[vary]\nmargin_rate = [0.1, 3.0]', ["margin.rate = 3.0"]),
        (
            'name = "x"\ndesign = "grid"\n[vary]\nmargin_rate = { low = 0.1, high = 0.2 }',
            ["vary.margin_rate", "list of values"],
        ),
        (
            'name = "x"\ndesign = "sobol"\nsamples = 10\n'
            "[vary]\nmargin_rate = { low = 0.1, high = 0.2 }",
            ["samples = 10", "power of 2"],
        ),
        ('name = "x"\nreplicate = 3\n[vary]\nmargin_rate = [0.1]', ["replicate", "Extra inputs"]),
        ('name = "x"\ndesign = "list"', ["points"]),
    ],
)
def test_bad_specs_are_named_before_anything_runs(tmp_path, body, words):
    p = tmp_path / "bad.toml"
    p.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_spec(p)
    for w in words:
        assert w in str(err.value)


def test_seeds_are_common_random_numbers(tmp_path):
    spec = load_spec(tiny_spec(tmp_path))
    runs = spec.runs()
    assert len(runs) == 12 and len({r.run_id for r in runs}) == 12
    assert all(0 <= r.seed < 2**63 for r in runs)
    again = {r.run_id: r.seed for r in reversed(load_spec(tiny_spec(tmp_path)).runs())}
    assert again == {r.run_id: r.seed for r in runs}
    # replicate k of every point shares its seed (paired comparisons); replicates differ
    by_rep: dict[int, set[int]] = {}
    for r in runs:
        by_rep.setdefault(r.replicate, set()).add(r.seed)
    assert all(len(seeds) == 1 for seeds in by_rep.values())
    assert len({next(iter(v)) for v in by_rep.values()}) == len(by_rep)
    other = SweepSpec.model_validate({**spec.model_dump(), "master_seed": 10}).runs()
    assert {r.seed for r in other}.isdisjoint({r.seed for r in runs})


def test_points_of_one_replicate_share_their_random_streams():
    # same seed, different margin and long share: the spot path and the crowd's own draws
    # (deposits, open steps) are the same, so the points' difference is the parameter's
    from abm.model import MarketModel

    a = MarketModel(scenario="small", rng=5, margin_rate=0.1, retail_long_share=0.5)
    b = MarketModel(scenario="small", rng=5, margin_rate=0.3, retail_long_share=0.9)
    assert (a.spot_path == b.spot_path).all()
    assert [t.account.deposits for t in a.retail] == [t.account.deposits for t in b.retail]
    assert [t.open_step for t in a.retail] == [t.open_step for t in b.retail]
    c = MarketModel(scenario="small", rng=5, **{"retail.n_traders": 50})
    assert (a.spot_path == c.spot_path).all()  # a bigger crowd leaves the spot alone


def test_the_counterfactual_arm_is_paired_on_the_seed(tmp_path):
    from abm.model import MarketModel
    from abm.scenarios import load as load_cfg
    from abm.statistics import mean_ci

    spec = SweepSpec.model_validate(
        {
            "name": "cf",
            "base": "small",
            "design": "grid",
            "replicates": 3,
            "vary": {"retail_long_share": [0.9]},
            "counterfactual": "no_harvest",
        }
    )
    run_sweep(spec, tmp_path, serial=True, progress=False)
    rows = load(tmp_path / "cf")
    k = "transfer_retail_to_hedger_harvest_forced_close"
    for _, row in rows.iterrows():
        arm = (
            MarketModel(
                load_cfg(
                    "small",
                    {
                        "retail_long_share": 0.9,
                        "seed": int(row["seed"]),
                        "hedger.spread_policy": "ordinary",
                    },
                )
            )
            .run()
            .summary
        )
        assert row[f"cf_{k}"] == arm[k]
        assert row[f"effect_{k}"] == row[k] - arm[k]
    pts = pd.read_parquet(tmp_path / "cf" / "points.parquet").set_index("metric")
    hand = mean_ci(rows[f"effect_{k}"])
    assert pts.loc[f"effect_{k}", "mean"] == pytest.approx(hand["mean"])
    assert pts.loc[f"effect_{k}", "t_hi"] == pytest.approx(hand["hi"])


def test_designs_cover_their_ranges():
    base = {
        "name": "d",
        "base": "small",
        "samples": 16,
        "vary": {
            "margin_rate": {"low": 0.05, "high": 0.25},
            "forced_close_lead_days": {"low": 1, "high": 4, "integer": True},
        },
    }
    for design in ("random", "lhs"):
        pts = SweepSpec.model_validate({**base, "design": design}).design_points()
        m = np.array([p["margin_rate"] for p in pts])
        assert len(pts) == 16 and m.min() >= 0.05 and m.max() <= 0.25
        assert {p["forced_close_lead_days"] for p in pts} <= {1, 2, 3, 4}
    lhs = SweepSpec.model_validate({**base, "design": "lhs"}).design_points()
    strata = np.floor((np.array([p["margin_rate"] for p in lhs]) - 0.05) / 0.2 * 16)
    assert sorted(strata) == list(range(16))  # one point per stratum
    sob = SweepSpec.model_validate({**base, "design": "sobol"}).design_points()
    assert len(sob) == 16 * (2 + 2)


def test_every_shipped_sweep_validates_at_both_sizes():
    for name in (
        "imbalance_x_margin",
        "forced_close_lead",
        "arbitrage_capacity",
        "loss_regimes",
        "sobol_main",
    ):
        for quick in (False, True):
            spec = load_spec(name, quick=quick)
            assert spec.question and spec.runs()


# -- engines give identical results --------------------------------------------------------------


def test_batch_size_keeps_four_tasks_per_worker_and_at_most_eight_jobs():
    from abm.sweeps.runner import batch_size

    assert batch_size(16, 2) == 2  # 16 // (4 × 2)
    assert batch_size(100, 2) == 8  # 12 by the rule, capped at 8
    assert batch_size(7, 2) == 1  # fewer than 4 jobs per worker: one job a task
    assert batch_size(0, 2) == 1 and batch_size(40, 0) == 1
    assert batch_size(960, 4, most=50) == 50


@pytest.mark.xdist_group("heavy")
def test_batched_tasks_yield_every_job_once_and_a_failed_task_fails_its_jobs_alone():
    """Jobs go to the workers in batches of 3; every tag comes back exactly once with its own
    result, and the one batch whose task raises yields the failure for each of its 3 jobs and
    for no other job."""
    import math

    from abm.sweeps.runner import dask_client, dask_map

    values = [float(i) for i in range(23)]
    values[10] = -1.0  # math.sqrt raises on it: the batch of jobs 9, 10, 11 fails
    jobs = [(i, (v,)) for i, v in enumerate(values)]
    with dask_client(False, 2, None) as client:
        got = list(dask_map(math.sqrt, jobs, client, failed=lambda err: repr(err), batch=3))
    tags = [t for t, _ in got]
    assert sorted(tags) == list(range(23))
    by_tag = dict(got)
    for i in range(23):
        if i in (9, 10, 11):
            assert "math domain error" in by_tag[i]
        else:
            assert by_tag[i] == i**0.5
    with pytest.raises(ValueError, match="batch 0: allowed 1 or more"):
        next(dask_map(math.sqrt, jobs, None, batch=0))


@pytest.mark.xdist_group("heavy")
def test_serial_local_cluster_and_external_cluster_agree(tmp_path):
    spec = load_spec(tiny_spec(tmp_path, keep="timeseries"))
    run_sweep(spec, tmp_path / "serial", serial=True, progress=False)
    rep = run_sweep(spec, tmp_path / "local", workers=2, progress=False)
    assert rep.done == 12 and not rep.failed
    serial = table(tmp_path / "serial" / "tiny")
    pd.testing.assert_frame_equal(serial, table(tmp_path / "local" / "tiny"))
    ts = query(tmp_path / "local" / "tiny", "SELECT count(DISTINCT run_id) AS n FROM timeseries")
    assert ts["n"].iloc[0] == 12

    # a scheduler and two workers as separate processes on localhost
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [
        subprocess.Popen(
            [
                str(VENV_BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(sched_file),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    try:
        deadline = time.time() + 30
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        import json

        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        str(VENV_BIN / "dask"),
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        from distributed import Client

        with Client(address) as c:
            c.wait_for_workers(2, timeout=30)
        res = CliRunner().invoke(
            app,
            [
                "sweep",
                str(tiny_spec(tmp_path, keep="timeseries")),
                "--address",
                address,
                "--out",
                str(tmp_path / "ext"),
                "--no-progress",
            ],
        )
        assert res.exit_code == 0, res.output
        pd.testing.assert_frame_equal(serial, table(tmp_path / "ext" / "tiny"))
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=20)


# -- nothing is lost -------------------------------------------------------------------------------


@pytest.mark.xdist_group("heavy")
def test_kill_9_mid_sweep_then_resume_equals_uninterrupted(tmp_path):
    spec_path = tiny_spec(tmp_path, days=12, margins="[0.05, 0.1, 0.15, 0.2]")
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "abm"),
            "sweep",
            str(spec_path),
            "--workers",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    runs_dir = out / "tiny" / "runs"
    deadline = time.time() + 120
    while time.time() < deadline:
        n = len(list(runs_dir.glob("*.parquet"))) if runs_dir.exists() else 0
        if n >= 3:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(runs_dir.glob("*.parquet")))
    assert 3 <= done_before < 24, "the sweep should have been killed mid-way"
    # resuming runs only what is missing
    res = CliRunner().invoke(
        app, ["sweep", str(spec_path), "--resume", "--serial", "--out", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert f"{done_before} already on disk" in res.output
    run_sweep(load_spec(spec_path), tmp_path / "clean", serial=True, progress=False)
    pd.testing.assert_frame_equal(table(out / "tiny"), table(tmp_path / "clean" / "tiny"))
    # without --resume an existing sweep is not overwritten
    res = CliRunner().invoke(app, ["sweep", str(spec_path), "--serial", "--out", str(out)])
    assert res.exit_code == 2 and "--resume" in res.output


def test_a_failing_run_is_recorded_and_retried_alone(tmp_path):
    csv = tmp_path / "spot.csv"
    spec = tmp_path / "fails.toml"
    spec.write_text(f"""
name = "fails"
base = "seed_example"
design = "list"
points = [{{ "spot.kind" = "constant" }}, {{ "spot.kind" = "csv", "spot.csv_path" = "{csv}" }}]
""")
    res = CliRunner().invoke(
        app, ["sweep", str(spec), "--serial", "--out", str(tmp_path), "--no-progress"]
    )
    assert res.exit_code == 1 and "1 runs done, 1 failed" in res.output
    fails = query(tmp_path / "fails", "SELECT * FROM failures")
    assert len(fails) == 1 and "FileNotFoundError" in fails["error"].iloc[0]
    assert "spot.csv" in fails["params"].iloc[0]
    n = 10 * 20 + 1  # seed_example: 10 days × 20 steps, plus step 0
    csv.write_text("spot\n" + "\n".join(["100.0"] * n))
    res = CliRunner().invoke(
        app,
        ["sweep", str(spec), "--retry-failed", "--serial", "--out", str(tmp_path), "--no-progress"],
    )
    assert res.exit_code == 0 and "1 runs done, 0 failed, 0 already on disk, of 1" in res.output
    assert len(load(tmp_path / "fails")) == 2
    assert not list((tmp_path / "fails" / "failures").glob("*.json"))


def _is_worker(proc) -> bool:
    """A live descendant that is not multiprocessing's resource tracker nor the fork server
    the workers are forked from (its direct child, with the workers' command line; processes
    may exit, or be zombies, between listing and asking: those are not candidates)."""
    import psutil

    try:
        cmd = " ".join(proc.cmdline())
        if not proc.is_running() or "resource_tracker" in cmd:
            return False
        return not ("forkserver" in cmd and proc.ppid() == os.getpid())
    except psutil.Error:
        return False


@pytest.mark.xdist_group("heavy")
def test_a_dying_worker_is_survived(tmp_path):
    import psutil

    spec = load_spec(tiny_spec(tmp_path, days=12, margins="[0.05, 0.1, 0.15, 0.2]"))
    box = {}
    t = threading.Thread(
        target=lambda: box.update(rep=run_sweep(spec, tmp_path, workers=2, progress=False))
    )
    me = psutil.Process()
    t.start()
    killed = None
    deadline = time.time() + 60
    runs_dir = tmp_path / "tiny" / "runs"
    while time.time() < deadline and t.is_alive():
        workers = [c for c in me.children(recursive=True) if _is_worker(c)]
        if workers and runs_dir.exists() and len(list(runs_dir.glob("*.parquet"))) >= 2:
            killed = workers[0]
            try:
                killed.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:  # it exited in between: try the next one
                killed = None
                continue
            break
        time.sleep(0.02)
    t.join(timeout=180)
    assert killed is not None, "no worker process was found to kill"
    rep = box["rep"]
    assert rep.done == 24 and not rep.failed
    assert len(load(tmp_path / "tiny")) == 24


# -- query and sensitivity ------------------------------------------------------------------------


def test_query_cli_prints_a_table(tmp_path):
    run_sweep(load_spec(tiny_spec(tmp_path)), tmp_path, serial=True, progress=False)
    res = CliRunner().invoke(
        app,
        [
            "query",
            str(tmp_path / "tiny"),
            "SELECT retail_long_share, count(*) AS n FROM runs GROUP BY 1 ORDER BY 1",
        ],
    )
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[0].split() == ["retail_long_share", "n"]
    assert [ln.split() for ln in lines[1:]] == [["0.5", "4"], ["0.7", "4"], ["0.9", "4"]]
    res = CliRunner().invoke(app, ["query", str(tmp_path / "tiny"), "SELECT nope FROM runs"])
    assert res.exit_code == 2 and "nope" in res.output
    manifest = (tmp_path / "tiny" / "manifest.json").read_text()
    assert '"spec_hash"' in manifest and '"git_commit"' in manifest


def test_sobol_indices_of_the_ishigami_function():
    from SALib.sample import sobol

    problem = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
    x = sobol.sample(problem, 4096, calc_second_order=False, seed=1)
    y = np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])
    df = sobol_indices(problem, y).set_index("parameter")
    # closed form (Ishigami & Homma 1990): S1 = 0.314, 0.442, 0; ST = 0.558, 0.442, 0.244
    assert df.loc["x1", "S1"] == pytest.approx(0.314, abs=0.03)
    assert df.loc["x2", "S1"] == pytest.approx(0.442, abs=0.03)
    assert df.loc["x3", "S1"] == pytest.approx(0.0, abs=0.03)
    assert df.loc["x1", "ST"] == pytest.approx(0.558, abs=0.03)
    assert df.loc["x3", "ST"] == pytest.approx(0.244, abs=0.03)


def test_emulated_sobol_recovers_the_ishigami_indices_from_400_points():
    from scipy.stats import qmc

    from abm.sweeps.sensitivity import emulated_sobol

    problem = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
    x = qmc.scale(qmc.LatinHypercube(d=3, seed=1).random(400), [-np.pi] * 3, [np.pi] * 3)
    y = np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])
    df, q2 = emulated_sobol(problem, x, y, n_base=8192, n_boot=30, seed=3, n_post=256)
    df = df.set_index("parameter")
    assert q2 > 0.95
    # closed form (Ishigami & Homma 1990); the direct estimator needs ~4096 × 5 runs for this
    exact = {"S1": [0.314, 0.442, 0.0], "ST": [0.558, 0.442, 0.244]}
    for key, values in exact.items():
        for name, v in zip(["x1", "x2", "x3"], values, strict=True):
            assert df.loc[name, f"{key}_lo"] <= v <= df.loc[name, f"{key}_hi"], (key, name)
            assert df.loc[name, f"{key}_boot_lo"] <= v <= df.loc[name, f"{key}_boot_hi"]
            assert df.loc[name, key] == pytest.approx(v, abs=0.05), (key, name)


def test_emulated_sobol_of_a_linear_function():
    from scipy.stats import qmc

    from abm.sweeps.sensitivity import emulated_sobol

    # y = x1 + 2 x2 on the unit cube: variances 1/12 and 4/12, so S1 = ST = 0.2, 0.8, 0
    problem = {"num_vars": 3, "names": ["a", "b", "c"], "bounds": [[0, 1]] * 3}
    x = qmc.LatinHypercube(d=3, seed=2).random(120)
    df, q2 = emulated_sobol(problem, x, x[:, 0] + 2 * x[:, 1], n_base=4096, n_boot=20, n_post=128)
    assert q2 > 0.99
    assert df["S1"].to_numpy() == pytest.approx([0.2, 0.8, 0.0], abs=0.03)
    assert df["ST"].to_numpy() == pytest.approx([0.2, 0.8, 0.0], abs=0.03)
    # a constant output has no indices: refused, not divided by zero
    with pytest.raises(ValueError, match="vary"):
        emulated_sobol(problem, x, np.ones(len(x)))


def test_sensitivity_cli_end_to_end(tmp_path):
    spec = tmp_path / "sob.toml"
    spec.write_text("""
name = "sob"
base = "seed_example"
design = "sobol"
samples = 8
outputs = ["transfer_retail_to_hedger_harvest_forced_close", "basis_at_forced_close"]
[set]
"hedger.spread_policy" = "fixed"
[vary]
harvest_spread = { low = 1.0, high = 8.0 }
margin_rate = { low = 0.05, high = 0.2 }
""")
    res = CliRunner().invoke(
        app, ["sensitivity", str(spec), "--run", "--serial", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    both = pd.read_parquet(tmp_path / "sob" / "sensitivity.parquet")
    assert set(both["method"]) == {"saltelli", "emulator"}
    assert both.loc[both["method"] == "emulator", "q2"].notna().all()
    df = both[both["method"] == "saltelli"].set_index(["output", "parameter"])
    # in the stylized market under the fixed-spread baseline the harvest is NDNP × spread × m:
    # the spread (a dial there) explains it all
    out = "transfer_retail_to_hedger_harvest_forced_close"
    assert df.loc[(out, "harvest_spread"), "ST"] > 0.9
    assert df.loc[(out, "margin_rate"), "ST"] < 0.05
    # N = 8 is far too small: the table and the CLI say so, with the N that would do
    w = float(df["interval_width"].max())
    assert not df["adequate"].all() and w > 0.1
    assert "not adequate" in res.output
    assert int(df["samples_needed"].iloc[0]) >= 8 * (w / 0.1) ** 2
    # analysing the same stored runs again shows the stored analysis and rewrites nothing
    f = tmp_path / "sob" / "sensitivity.parquet"
    stamp = f.stat().st_mtime_ns
    again = CliRunner().invoke(app, ["sensitivity", str(spec), "--out", str(tmp_path)])
    assert again.exit_code == 0 and "shown as stored" in again.output
    assert f.stat().st_mtime_ns == stamp
    # a changed stored run changes the inputs: recomputed (and rewritten)
    runs = pd.read_parquet(tmp_path / "sob" / "runs.parquet")
    runs.loc[0, out] += 1000.0
    runs.to_parquet(tmp_path / "sob" / "runs.parquet", index=False)
    third = CliRunner().invoke(app, ["sensitivity", str(spec), "--out", str(tmp_path)])
    assert third.exit_code == 0 and "shown as stored" not in third.output
    assert pd.read_parquet(f)["inputs_sha256"].iloc[0] != both["inputs_sha256"].iloc[0]


@pytest.mark.xdist_group("heavy")
def test_shipped_sweep_runs_quick_end_to_end(tmp_path):
    rep = run_sweep(
        load_spec("imbalance_x_margin", quick=True), tmp_path, workers=2, quick=True, progress=False
    )
    assert rep.done == 6 and not rep.failed
    df = load(tmp_path / "imbalance_x_margin")
    assert set(df["retail_long_share"]) == {0.5, 0.7, 0.9}
    assert (df["ledger_residual"].abs() < 1e-6).all()
    shutil.rmtree(tmp_path / "imbalance_x_margin")


def test_finished_sweep_is_compacted_and_reads_the_same(tmp_path):
    spec = load_spec(tiny_spec(tmp_path, keep="timeseries"))
    run_sweep(spec, tmp_path, serial=True, progress=False)
    root = tmp_path / "tiny"
    assert (root / "runs.parquet").exists() and not list((root / "runs").glob("*.parquet"))
    assert (root / "timeseries.parquet").exists()
    before = table(root)
    assert len(before) == 12
    # a crash between writing runs.parquet and removing a run file leaves a duplicate
    one = before.iloc[[0]]
    pd.read_parquet(root / "runs.parquet").iloc[[0]].to_parquet(
        root / "runs" / f"{one['run_id'].iloc[0]}.parquet", index=False
    )
    pd.testing.assert_frame_equal(table(root), before)
    rep = run_sweep(spec, tmp_path, serial=True, resume=True, progress=False)
    assert rep.skipped == 12 and rep.done == 0
    n = query(root, "SELECT count(*) AS n FROM timeseries")["n"].iloc[0]
    assert n == 12 * 8 * 40


def test_sensitivity_of_an_output_that_never_moves_is_a_clear_error(tmp_path):
    from abm.sweeps.sensitivity import analyse

    spec = SweepSpec.model_validate(
        {
            "name": "flat",
            "base": "seed_example",
            "design": "sobol",
            "samples": 4,
            "outputs": ["bad_debt"],
            "vary": {"margin_rate": {"low": 0.05, "high": 0.2}},
        }
    )
    table = pd.DataFrame({"point": range(spec.n_points()), "bad_debt": 0.0})
    with pytest.raises(ValueError, match="'bad_debt' is 0 at every point"):
        analyse(spec, table, tmp_path)
