"""A new user's first hour (issue 20): the run summary adds up and shows only what the run
used, `abm sensitivity` never starts runs unasked, `abm query` reads what the README's
commands wrote (a run's folder, a --quick sweep) and names what exists when it cannot, and
retrying a sweep with nothing to retry succeeds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abm.cli import app, summary_rows
from abm.model import MarketModel
from abm.scenarios import load
from abm.sweeps.runner import run_sweep
from abm.sweeps.spec import load_spec

runner = CliRunner()


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("−", "-"))


@pytest.fixture(scope="module")
def cascade_run():
    # cascade: thin capital and high leverage, so fees, bad debt and the insurance fund all
    # move; the P&L rows must still close
    return MarketModel(load("cascade", {"seed": 2})).run()


def test_pnl_rows_add_up_to_zero_with_fees_and_bad_debt(cascade_run):
    rows = [r for r in summary_rows(cascade_run) if r[0] == "P&L by class"]
    keys = [k for _, k, _, _ in rows]
    # every class that held an account, the commercials included
    assert len([k for k in keys if k.startswith("pnl ")]) == len(cascade_run.by_class)
    assert "fees_total" in keys and "bad_debt_broker" in keys
    parts = [_number(v) for _, k, v, _ in rows if k != "sum"]
    total = sum(parts)
    scale = sum(abs(x) for x in parts)
    assert scale > 0
    # the rows are rounded for display (3-4 significant figures each): the sum of the printed
    # numbers closes to their rounding, the "sum" row (from unrounded values) to 1e-9
    assert abs(total) <= 5e-3 * scale
    (shown_sum,) = [_number(v) for _, k, v, _ in rows if k == "sum"]
    assert abs(shown_sum) <= 1e-9 * scale


def test_summary_shows_the_policy_and_the_ndnp_and_no_idle_parameter():
    r = MarketModel(load("small", {"seed": 3})).run()
    keys = {k for _, k, _, _ in summary_rows(r)}
    for k in ("harvest_policy", "n_firms", "ndnp_at_harvest_start", "ndnp_at_deadline"):
        assert k in keys
    assert "harvest_discount" in keys and "theory_divergence" in keys
    # small: the optimising policy (no typed-in spread) and no arbitrageurs
    assert r.config.hedger.spread_policy == "estimating" and r.config.arbitrageurs.n == 0
    assert "harvest_spread" not in keys and "arbitrage_capacity" not in keys
    # the baseline policy uses its spread, and arbitrageurs use their capacity: then shown
    r2 = MarketModel(
        load("small", {"hedger.spread_policy": "fixed", "arbitrageurs.n": 2, "seed": 3})
    ).run()
    keys2 = {k for _, k, _, _ in summary_rows(r2)}
    assert "harvest_spread" in keys2 and "arbitrage_capacity" in keys2


def test_sensitivity_refuses_to_start_runs_unasked(tmp_path):
    res = runner.invoke(app, ["sensitivity", "sobol_main", "--quick", "--out", str(tmp_path)])
    spec = load_spec("sobol_main", quick=True)
    assert res.exit_code == 2
    assert f"{spec.n_runs():,} of {spec.n_runs():,} runs" in res.output
    assert "--run" in res.output and "duration unknown" in res.output
    assert not any(tmp_path.iterdir())  # nothing written


def test_sensitivity_leaves_an_equal_stored_analysis_untouched(tmp_path):
    import pandas as pd

    from abm.sweeps.sensitivity import _store

    df = pd.DataFrame({"output": ["x", "y"], "S1": [0.25, 0.5], "adequate": [True, False]})
    _store(df, tmp_path)
    f = tmp_path / "sensitivity.parquet"
    before = f.stat().st_mtime_ns, (tmp_path / "sensitivity.json").read_bytes()
    # a recomputation on another CPU differs in the last bits: not rewritten
    _store(df.assign(S1=df["S1"] * (1 + 4e-16)), tmp_path)
    assert (f.stat().st_mtime_ns, (tmp_path / "sensitivity.json").read_bytes()) == before
    # a real change is
    _store(df.assign(S1=[0.25, 0.6]), tmp_path)
    assert pd.read_parquet(f)["S1"].tolist() == [0.25, 0.6]
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.fixture(scope="module")
def quick_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    spec = load_spec("imbalance_x_margin", quick=True)
    run_sweep(spec, out, serial=True, quick=True, progress=False, folder=f"{spec.name}-quick")
    return out


def test_query_after_the_quick_sweep_names_its_folder(quick_sweep):
    res = runner.invoke(app, ["query", str(quick_sweep / "imbalance_x_margin"), "SELECT 1"])
    assert res.exit_code == 2
    assert "does not exist" in res.output
    assert str(quick_sweep / "imbalance_x_margin-quick") in res.output
    spec = load_spec("imbalance_x_margin", quick=True)
    ok = runner.invoke(
        app,
        ["query", str(quick_sweep / "imbalance_x_margin-quick"), "SELECT count(*) AS n FROM runs"],
    )
    assert ok.exit_code == 0 and str(spec.n_runs()) in ok.output


def test_query_lists_the_folders_that_exist(quick_sweep, tmp_path):
    res = runner.invoke(app, ["query", str(quick_sweep / "typo"), "SELECT 1"])
    assert res.exit_code == 2 and "imbalance_x_margin-quick" in res.output
    res = runner.invoke(app, ["query", str(tmp_path / "empty"), "SELECT 1"])
    assert res.exit_code == 2 and "no results folders" in res.output


def test_query_reads_a_single_run_folder(tmp_path):
    res = runner.invoke(app, ["run", "small", "--out", str(tmp_path), "--no-progress", "--json"])
    assert res.exit_code == 0, res.output
    folder = Path(tmp_path)
    from abm.results import load_run, query

    r = load_run(folder)
    s = query(folder, "SELECT ndnp_at_deadline, harvest_policy FROM summary")
    assert s["ndnp_at_deadline"].iloc[0] == r.summary["ndnp_at_deadline"]
    assert query(folder, "SELECT * FROM runs")["seed"].iloc[0] == r.summary["seed"]
    ev = query(folder, "SELECT count(*) AS n FROM events")["n"].iloc[0]
    assert ev == len(r.events)
    by = query(folder, "SELECT sum(pnl) AS p FROM by_class")["p"].iloc[0]
    assert math.isclose(by, r.by_class["pnl"].sum())
    with pytest.raises(ValueError, match="one run's folder, with the views"):
        query(folder, "SELECT * FROM points")


def test_retry_failed_with_nothing_to_retry_succeeds(quick_sweep):
    res = runner.invoke(
        app,
        [
            "sweep",
            "imbalance_x_margin",
            "--quick",
            "--retry-failed",
            "--serial",
            "--out",
            str(quick_sweep),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "nothing to retry" in res.output
